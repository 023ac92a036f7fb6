//! README's "Layout" section is true and complete: every module it names exists, and every
//! module of the launcher's `src/` (its files and folders, and each backend) is named in it.

use std::path::Path;

fn layout_section() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("\n## Layout\n").expect("README has a ## Layout section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    rest[..end].to_owned()
}

/// Backticked names that look like modules: `x.rs`, `x/`, `a/b.rs`.
fn named(section: &str) -> Vec<String> {
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| !t.contains(' ') && (t.ends_with(".rs") || t.ends_with('/')))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_module_the_layout_names_exists() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let section = layout_section();
    let mut missing = Vec::new();
    for name in named(&section) {
        // "there is no `secret.rs`": named to say it is not there.
        if section.contains(&format!("no `{name}`")) {
            assert!(!src.join(&name).exists(), "README says there is no {name}, but there is");
            continue;
        }
        // A name is relative to the repository, to src/ or one of its folders (`ass/` under
        // `backend/`), or to a workspace crate's src/ (`client/`).
        let root = src.parent().unwrap();
        let crates = std::fs::read_dir(root.join("crates")).unwrap().flatten().map(|c| c.path().join("src"));
        let bases: Vec<_> = [root.to_path_buf(), src.clone()]
            .into_iter()
            .chain(std::fs::read_dir(&src).unwrap().flatten().map(|d| d.path()))
            .chain(crates)
            .collect();
        let found = bases.iter().any(|b| b.join(&name).exists());
        if !found {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "README's layout names modules that do not exist: {missing:?}");
}

#[test]
fn every_module_of_src_is_named_in_the_layout() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let names = named(&layout_section());
    let mentioned = |n: &str| names.iter().any(|m| m == n || m.ends_with(&format!("/{n}")));
    let mut unnamed = Vec::new();
    let mut check = |dir: &Path, prefix: &str| {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let name = if entry.path().is_dir() { format!("{file}/") } else { file };
            if name == "mod.rs" || !(name.ends_with(".rs") || name.ends_with('/')) {
                continue;
            }
            let full = format!("{prefix}{name}");
            if !mentioned(&name) && !mentioned(&full) {
                unnamed.push(full);
            }
        }
    };
    check(&src, "");
    check(&src.join("backend"), "backend/");
    unnamed.sort();
    assert!(unnamed.is_empty(), "modules README's layout does not name (add a line for each): {unnamed:?}");
}
