//! The sandbox's resolver: every name it answers resolves to the loopback address, where the
//! capture listeners route by SNI / `Host`; under `--deny-other-hosts` a name neither listed
//! nor allowed does not exist (NXDOMAIN), so a client fails at once instead of trying.

use std::net::Ipv4Addr;

use simple_dns::rdata::{RData, A};
use simple_dns::{Packet, PacketFlag, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};

/// Which names the resolver answers.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Listed and allowed host names (lower case).
    pub allowed: Vec<String>,
    /// `--deny-other-hosts`: other names do not exist.
    pub deny_other: bool,
}

impl Names {
    /// Whether `name` (lower case, no final dot) gets the loopback address.
    pub fn answers(&self, name: &str) -> bool {
        !self.deny_other || name == "localhost" || self.allowed.iter().any(|a| a == name)
    }
}

/// How long a client may keep an answer (they never change during a run).
const TTL: u32 = 60;

/// The answer to one query message, or `None` for a message that is not a query.
pub fn answer(query: &[u8], names: &Names) -> Option<Vec<u8>> {
    let packet = Packet::parse(query).ok()?;
    if packet.has_flags(PacketFlag::RESPONSE) {
        return None;
    }
    let desired = packet.has_flags(PacketFlag::RECURSION_DESIRED);
    let questions = packet.questions.clone();
    let mut reply = Packet::new_reply(packet.id());
    reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER | PacketFlag::RECURSION_AVAILABLE);
    if desired {
        reply.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    for q in &questions {
        let name = q.qname.to_string().trim_end_matches('.').to_ascii_lowercase();
        if !names.answers(&name) {
            tracing::debug!(name, "sandbox resolver: not an allowed name (NXDOMAIN)");
            *reply.rcode_mut() = RCODE::NameError;
            continue;
        }
        // Only IPv4: one address family keeps clients from waiting on the other.
        if matches!(q.qtype, QTYPE::TYPE(TYPE::A) | QTYPE::ANY) {
            let address = u32::from(Ipv4Addr::LOCALHOST);
            reply.answers.push(ResourceRecord::new(q.qname.clone(), CLASS::IN, TTL, RData::A(A { address })));
        }
    }
    reply.questions = questions;
    reply.build_bytes_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::{Name, Question, QCLASS};

    fn ask(name: &str, qtype: TYPE, names: &Names) -> (RCODE, Vec<String>) {
        let mut q = Packet::new_query(7);
        q.set_flags(PacketFlag::RECURSION_DESIRED);
        q.questions.push(Question::new(
            Name::new_unchecked(name),
            QTYPE::TYPE(qtype),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        let bytes = answer(&q.build_bytes_vec().unwrap(), names).unwrap();
        let r = Packet::parse(&bytes).unwrap();
        assert_eq!(r.id(), 7);
        assert!(r.has_flags(PacketFlag::RESPONSE));
        let answers = r
            .answers
            .iter()
            .map(|a| match &a.rdata {
                RData::A(a) => Ipv4Addr::from(a.address).to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        (r.rcode(), answers)
    }

    #[test]
    fn listed_names_resolve_to_loopback_and_others_only_without_deny() {
        let deny = Names { allowed: vec!["api.example.com".into()], deny_other: true };
        assert_eq!(ask("API.example.com", TYPE::A, &deny), (RCODE::NoError, vec!["127.0.0.1".into()]));
        assert_eq!(ask("api.example.com", TYPE::AAAA, &deny), (RCODE::NoError, vec![]));
        assert_eq!(ask("evil.example.net", TYPE::A, &deny).0, RCODE::NameError);
        assert_eq!(ask("localhost", TYPE::A, &deny), (RCODE::NoError, vec!["127.0.0.1".into()]));
        let open = Names { allowed: vec![], deny_other: false };
        assert_eq!(ask("anything.example.org", TYPE::A, &open), (RCODE::NoError, vec!["127.0.0.1".into()]));
    }

    #[test]
    fn garbage_and_responses_get_no_answer() {
        let open = Names { allowed: vec![], deny_other: false };
        assert!(answer(b"\x00\x01garbage", &open).is_none());
        let mut r = Packet::new_reply(1);
        r.set_flags(PacketFlag::RESPONSE);
        assert!(answer(&r.build_bytes_vec().unwrap(), &open).is_none());
    }
}
