//! Writing a set of objects as one pack file, without delta search.
//!
//! libgit2's `PackBuilder` always searches for deltas, which costs more than the whole rest
//! of a large batch; a batch's objects are small and compress well on their own, and the
//! user's next `git gc` will delta them anyway. So we write the pack ourselves (zlib per
//! object, in parallel) and hand it to libgit2's indexer, which checks every object and
//! writes the `.idx` beside it.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::Compression;
use git2::{ObjectType, Odb};
use rayon::prelude::*;
use sha1::{Digest, Sha1};

use crate::git::GitError;

/// One object to pack.
pub struct PackObject<'a> {
    pub kind: ObjectType,
    pub data: std::borrow::Cow<'a, [u8]>,
}

fn type_code(kind: ObjectType) -> u8 {
    match kind {
        ObjectType::Commit => 1,
        ObjectType::Tree => 2,
        ObjectType::Blob => 3,
        ObjectType::Tag => 4,
        _ => 0,
    }
}

/// The pack entry header: type and inflated size, as git's variable-length integer.
fn entry_header(kind: ObjectType, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    let mut byte = (type_code(kind) << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest > 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
    out
}

/// The pack file's bytes: header, entries, SHA-1 trailer.
pub fn pack_bytes(objects: &[PackObject<'_>]) -> Result<Vec<u8>, GitError> {
    let entries: Vec<Vec<u8>> = objects
        .par_iter()
        .map(|o| {
            let mut enc = ZlibEncoder::new(entry_header(o.kind, o.data.len()), Compression::fast());
            enc.write_all(&o.data)?;
            enc.finish()
        })
        .collect::<Result<_, _>>()
        .map_err(|e| GitError::Io {
            path: "pack".into(),
            source: e,
        })?;
    let len: usize = entries.iter().map(Vec::len).sum();
    let mut pack = Vec::with_capacity(12 + len + 20);
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&(objects.len() as u32).to_be_bytes());
    for e in &entries {
        pack.extend_from_slice(e);
    }
    let digest = Sha1::digest(&pack);
    pack.extend_from_slice(&digest);
    Ok(pack)
}

/// Writes the objects into the object database as one pack (with its index).
pub fn write_pack(odb: &Odb<'_>, objects: &[PackObject<'_>]) -> Result<(), GitError> {
    let bytes = pack_bytes(objects)?;
    let mut w = odb
        .packwriter()
        .map_err(GitError::git("start writing a pack"))?;
    w.write_all(&bytes).map_err(|e| GitError::Io {
        path: "objects/pack".into(),
        source: e,
    })?;
    w.commit().map_err(GitError::git("index the new pack"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_headers_encode_type_and_size() {
        assert_eq!(entry_header(ObjectType::Blob, 5), vec![0x35]);
        assert_eq!(entry_header(ObjectType::Blob, 16), vec![0xb0, 0x01]);
        assert_eq!(entry_header(ObjectType::Commit, 300), vec![0x9c, 0x12]);
    }

    #[test]
    fn libgit2_reads_what_we_pack() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let odb = repo.odb().unwrap();
        let data: Vec<Vec<u8>> = (0..50)
            .map(|i| format!("blob number {i}\n").repeat(i + 1).into_bytes())
            .collect();
        let objects: Vec<PackObject<'_>> = data
            .iter()
            .map(|d| PackObject {
                kind: ObjectType::Blob,
                data: d.as_slice().into(),
            })
            .collect();
        write_pack(&odb, &objects).unwrap();
        for d in &data {
            let id = git2::Oid::hash_object(ObjectType::Blob, d).unwrap();
            assert_eq!(repo.find_blob(id).unwrap().content(), d.as_slice());
        }
        let packs: Vec<_> = std::fs::read_dir(dir.path().join("objects/pack"))
            .unwrap()
            .collect();
        assert_eq!(packs.len(), 2, "one .pack and one .idx");
    }
}
