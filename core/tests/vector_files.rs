//! The committed test vectors are the published bytes, unmodified: each
//! file's SHA-256 must match the one in `tests/vectors/PROVENANCE.md`. A
//! vector that fails is never "fixed" by editing it.

use sha2::{Digest, Sha256};

fn provenance() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/PROVENANCE.md");
    std::fs::read_to_string(path).expect("PROVENANCE.md is committed beside the vectors")
}

/// `(file, sha256)` pairs from the provenance tables: rows `| `file` | `hex` |`.
fn listed() -> Vec<(String, String)> {
    provenance()
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let file = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let hash = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            (hash.len() == 64).then(|| (file.to_owned(), hash.to_owned()))
        })
        .collect()
}

#[test]
fn every_vector_file_is_listed_with_its_published_hash() {
    let listed = listed();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
    let mut on_disk = Vec::new();
    for sub in ["noise", "cgo"] {
        for entry in std::fs::read_dir(format!("{dir}/{sub}")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            on_disk.push(format!("{sub}/{name}"));
        }
    }
    on_disk.sort();
    let mut names: Vec<String> = listed.iter().map(|(f, _)| f.clone()).collect();
    names.sort();
    assert_eq!(
        names, on_disk,
        "PROVENANCE.md lists exactly the files present"
    );
    for (file, hash) in &listed {
        let bytes = std::fs::read(format!("{dir}/{file}")).unwrap();
        let actual = hex::encode(Sha256::digest(&bytes));
        assert_eq!(&actual, hash, "{file} differs from the published bytes");
    }
}
