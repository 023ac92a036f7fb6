// What a user of the official JS SDK would write instead of vault-run: fetch N secrets from
// the service, then spawn the child with them in its environment.
//
//   node sdk-launch.cjs N CMD [ARGS...]      (SDK_PATH, ASS_AGENT_KEY, ASS_BASE_URL in the env)
//
// The SDK asks for one token per distinct scope (secrets:read:ns/KEY) and caches only the
// last one, so N concurrent getSecret calls would each request their own token. To be fair to
// it we first request one token with the namespace scope (secrets:read:bench/nN/*), as
// vault-run does with its one token; every getSecret then reuses it.
'use strict';
const { spawnSync } = require('node:child_process');
const { AgentVault } = require(process.env.SDK_PATH); // dist/index.cjs: the `exports` map is broken

async function main() {
  const n = Number(process.argv[2]);
  const [cmd, ...args] = process.argv.slice(3);
  const vault = new AgentVault({ agentKey: process.env.ASS_AGENT_KEY, baseUrl: process.env.ASS_BASE_URL, retries: 0 });
  await vault.requestToken({ scopes: [`secrets:read:bench/n${n}/*`], ttl: '5m' });
  const names = Array.from({ length: n }, (_, i) => i + 1);
  const values = await Promise.all(names.map((i) => vault.getSecret(`bench/n${n}/${i}`)));
  const env = { ...process.env };
  delete env.ASS_AGENT_KEY;
  names.forEach((i, j) => { env[`S_${i}`] = values[j]; });
  const r = spawnSync(cmd, args, { env, stdio: 'inherit' });
  if (r.error) throw r.error;
  process.exit(r.status ?? 1);
}

main().catch((e) => { console.error(e); process.exit(1); });
