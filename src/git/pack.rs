//! Writing a batch's objects as one pack file, streamed, without delta search, with its
//! `.idx` written by us.
//!
//! libgit2's `PackBuilder` always searches for deltas, which costs more than the whole rest
//! of a large batch, and it wants every object in an object database first (memory for a
//! million manifests). A batch's objects are small and compress well on their own, and the
//! user's next `git gc` deltifies them anyway. So objects are compressed in parallel by the
//! caller ([`compress`]) and appended to a pack file as they come ([`PackWriter::add`]);
//! [`PackWriter::finish`] fixes the object count in the header, appends the SHA-1 trailer,
//! writes the version-2 index, syncs both to disk and renames them into `objects/pack` (the
//! `.pack` before the `.idx`, so a visible index always has its pack).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flate2::{Compress, Compression, FlushCompress, Status};
use git2::{ObjectType, Oid};
use sha1::{Digest, Sha1};

use crate::git::GitError;

fn type_code(kind: ObjectType) -> u8 {
    match kind {
        ObjectType::Commit => 1,
        ObjectType::Tree => 2,
        ObjectType::Blob => 3,
        ObjectType::Tag => 4,
        _ => 0,
    }
}

fn type_name(kind: ObjectType) -> &'static str {
    match kind {
        ObjectType::Commit => "commit",
        ObjectType::Tree => "tree",
        ObjectType::Tag => "tag",
        _ => "blob",
    }
}

/// The object id git gives `data` of this kind.
pub fn object_id(kind: ObjectType, data: &[u8]) -> Oid {
    let mut h = Sha1::new();
    h.update(format!("{} {}\0", type_name(kind), data.len()).as_bytes());
    h.update(data);
    let digest = h.finalize();
    // 20 bytes always make an Oid.
    Oid::from_bytes(&digest).unwrap_or(Oid::ZERO_SHA1)
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

/// One object ready to append: its id and its pack entry (header + zlib stream).
pub struct Compressed {
    pub id: Oid,
    entry: Vec<u8>,
}

thread_local! {
    /// This thread's zlib stream, reset between objects: a new one allocates and zeroes
    /// ~300 KB of tables, which cost more than compressing a small object (and, at a million
    /// objects, kept the allocator busy in a fragmented heap).
    static DEFLATE: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
}

/// Objects shorter than this are written as one stored (uncompressed) deflate block: deflate
/// cannot make them smaller (a run directory's tree is ~74 bytes, two thirds of it object
/// ids, which are random bytes), and resetting a compressor clears a 128 KiB hash table, which
/// cost more than the rest of writing such an object.
pub const STORED_BELOW: usize = 128;

/// The zlib stream of `data` as one stored block: header, length and its complement, the
/// bytes, Adler-32 (RFC 1950, RFC 1951 §3.2.4). `data` must be shorter than 64 KiB (it is
/// shorter than [`STORED_BELOW`]).
fn stored_into(out: &mut Vec<u8>, data: &[u8]) {
    // CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (fastest; 0x7801 is a multiple of 31).
    out.extend_from_slice(&[0x78, 0x01, 0x01]);
    let len = data.len() as u16;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
}

/// Appends the zlib stream of `data` to `out`, with this thread's reused compressor (stored,
/// for objects under [`STORED_BELOW`] bytes).
fn deflate_into(out: &mut Vec<u8>, data: &[u8], level: Compression) -> std::io::Result<()> {
    if data.len() < STORED_BELOW {
        stored_into(out, data);
        return Ok(());
    }
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let z = match &mut *slot {
            Some((l, z)) if *l == level.level() => {
                z.reset();
                z
            }
            other => &mut other.insert((level.level(), Compress::new(level, true))).1,
        };
        out.reserve(data.len() / 2 + 64);
        let start = z.total_in();
        loop {
            let done = (z.total_in() - start) as usize;
            let status = z
                .compress_vec(&data[done..], out, FlushCompress::Finish)
                .map_err(std::io::Error::other)?;
            match status {
                Status::StreamEnd => return Ok(()),
                // The output is full: make room and go on.
                Status::Ok | Status::BufError => out.reserve(out.capacity().max(64)),
            }
        }
    })
}

/// Hashes and compresses one object (pure; run it in parallel), at git's default level for
/// a batch ([`DEFAULT_LEVEL`]).
pub fn compress(kind: ObjectType, data: &[u8]) -> Result<Compressed, GitError> {
    compress_at(kind, data, DEFAULT_LEVEL)
}

/// The zlib level of a batch's objects unless git's configuration names one: the fastest,
/// since `git gc` recompresses (and deltifies) them anyway.
pub const DEFAULT_LEVEL: Compression = Compression::fast();

/// [`compress`] at a given zlib level.
pub fn compress_at(
    kind: ObjectType,
    data: &[u8],
    level: Compression,
) -> Result<Compressed, GitError> {
    compress_known(kind, data, object_id(kind, data), level)
}

/// [`compress_at`] of an object whose id the caller has computed ([`object_id`]).
fn compress_known(
    kind: ObjectType,
    data: &[u8],
    id: Oid,
    level: Compression,
) -> Result<Compressed, GitError> {
    let mut entry = entry_header(kind, data.len());
    deflate_into(&mut entry, data, level).map_err(|e| GitError::Io {
        path: "pack entry".into(),
        source: e,
    })?;
    Ok(Compressed { id, entry })
}

/// Objects for a pack whose ids are needed at once (a tree's id goes into its parent) but
/// whose compression can wait: [`PackQueue::add_object`] hashes on the caller's thread and
/// queues; every [`PackQueue::ROUND`] objects, and at [`PackQueue::flush`], the queue is
/// compressed in parallel and appended in the order it was queued, so the pack's bytes are
/// what [`PackWriter::add_object`] one at a time would have written. Writing a batch's trees
/// was one thread compressing ~100k small objects one after the other.
pub struct PackQueue<'p> {
    pack: &'p mut PackWriter,
    queued: Vec<(ObjectType, Vec<u8>, Oid)>,
}

impl<'p> PackQueue<'p> {
    /// Objects per parallel round: enough to keep every thread busy, few enough that the
    /// queue's memory stays small.
    pub const ROUND: usize = 4096;

    pub fn new(pack: &'p mut PackWriter) -> PackQueue<'p> {
        PackQueue {
            pack,
            queued: Vec::new(),
        }
    }

    /// Queues one object; returns its id.
    pub fn add_object(&mut self, kind: ObjectType, data: Vec<u8>) -> Result<Oid, GitError> {
        let id = object_id(kind, &data);
        self.queued.push((kind, data, id));
        if self.queued.len() >= Self::ROUND {
            self.flush()?;
        }
        Ok(id)
    }

    /// Compresses and appends everything queued.
    pub fn flush(&mut self) -> Result<(), GitError> {
        use rayon::prelude::*;
        let level = self.pack.level;
        let compressed: Vec<Result<Compressed, GitError>> = self
            .queued
            .par_iter()
            .map(|(kind, data, id)| compress_known(*kind, data, *id, level))
            .collect();
        self.queued.clear();
        for c in compressed {
            self.pack.add(&c?)?;
        }
        Ok(())
    }
}

/// A pack being written to a temporary file in `objects/pack`.
pub struct PackWriter {
    dir: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    offset: u64,
    /// (id, crc32 of the entry, offset of the entry)
    entries: Vec<(Oid, u32, u64)>,
    seen: HashSet<Oid>,
    level: Compression,
}

/// The zlib level git's configuration asks for: `pack.compression`, else `core.compression`
/// (-1 is zlib's default, 6; 0–9 as given), else [`DEFAULT_LEVEL`]. A value git would refuse
/// (outside -1..=9) falls back to [`DEFAULT_LEVEL`] too: the level never changes an object id.
pub fn configured_level(pack: Option<i32>, core: Option<i32>) -> Compression {
    match pack.or(core) {
        Some(-1) => Compression::default(),
        Some(l @ 0..=9) => Compression::new(l as u32),
        _ => DEFAULT_LEVEL,
    }
}

impl PackWriter {
    /// Starts a pack in `pack_dir` (`.git/objects/pack`).
    pub fn create(pack_dir: &Path) -> Result<PackWriter, GitError> {
        fs::create_dir_all(pack_dir).map_err(GitError::io(pack_dir))?;
        let tmp = pack_dir.join(format!("tmp_pack_artifact-migrate-{}", std::process::id()));
        let file = File::create(&tmp).map_err(GitError::write(&tmp))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        // The object count is fixed up by `finish`.
        if let Err(e) = out.write_all(b"PACK\0\0\0\x02\0\0\0\0") {
            let _ = fs::remove_file(&tmp);
            return Err(GitError::Write {
                path: tmp,
                source: e,
            });
        }
        Ok(PackWriter {
            dir: pack_dir.to_path_buf(),
            tmp,
            out: Some(out),
            offset: 12,
            entries: Vec::new(),
            seen: HashSet::new(),
            level: DEFAULT_LEVEL,
        })
    }

    /// The same pack, its objects compressed at `level` ([`configured_level`]).
    pub fn with_level(mut self, level: Compression) -> PackWriter {
        self.level = level;
        self
    }

    /// The zlib level of this pack's objects.
    pub fn level(&self) -> Compression {
        self.level
    }

    /// Appends an object; an object already in this pack is not written twice.
    pub fn add(&mut self, c: &Compressed) -> Result<(), GitError> {
        if !self.seen.insert(c.id) {
            return Ok(());
        }
        let out = self.out.as_mut().ok_or_else(|| GitError::Io {
            path: self.tmp.clone(),
            source: std::io::Error::other("pack already finished"),
        })?;
        out.write_all(&c.entry)
            .map_err(GitError::write(&self.tmp))?;
        self.entries
            .push((c.id, crc32fast::hash(&c.entry), self.offset));
        self.offset += c.entry.len() as u64;
        Ok(())
    }

    /// Hashes, compresses and appends one object; returns its id.
    pub fn add_object(&mut self, kind: ObjectType, data: &[u8]) -> Result<Oid, GitError> {
        let c = compress_at(kind, data, self.level)?;
        self.add(&c)?;
        Ok(c.id)
    }

    /// How many objects the pack holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pack holds no object.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Completes the pack and its index, durably, under `objects/pack`; returns the pack's
    /// name (`pack-<sha>`).
    pub fn finish(mut self) -> Result<String, GitError> {
        let idx_tmp = self
            .dir
            .join(format!("tmp_idx_artifact-migrate-{}", std::process::id()));
        let result = self.finish_files(&idx_tmp);
        if result.is_err() {
            // A full disk or a read-only directory half-way: leave no temporary file behind.
            let _ = fs::remove_file(&self.tmp);
            let _ = fs::remove_file(&idx_tmp);
        }
        result
    }

    fn finish_files(&mut self, idx_tmp: &Path) -> Result<String, GitError> {
        let tmp = self.tmp.clone();
        let io = |e| GitError::Write {
            path: tmp.clone(),
            source: e,
        };
        let out = self
            .out
            .take()
            .ok_or_else(|| io(std::io::Error::other("pack already finished")))?;
        let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.seek(SeekFrom::Start(8)).map_err(io)?;
        file.write_all(&(self.entries.len() as u32).to_be_bytes())
            .map_err(io)?;
        drop(file);
        // The trailer is the SHA-1 of everything before it, header included.
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&tmp)
            .map_err(io)?;
        let mut h = Sha1::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let checksum = h.finalize();
        file.write_all(&checksum).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        let hex: String = checksum.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("pack-{hex}");
        let idx = write_index(&mut self.entries, &checksum);
        let write_idx = || -> std::io::Result<()> {
            let mut f = File::create(idx_tmp)?;
            f.write_all(&idx)?;
            f.sync_all()
        };
        write_idx().map_err(GitError::write(idx_tmp))?;
        let (pack_path, idx_path) = (
            self.dir.join(format!("{name}.pack")),
            self.dir.join(format!("{name}.idx")),
        );
        for p in [tmp.as_path(), idx_tmp] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o444))
                .map_err(GitError::write(p))?;
        }
        fs::rename(&tmp, &pack_path).map_err(GitError::write(&pack_path))?;
        if let Err(e) = fs::rename(idx_tmp, &idx_path) {
            // A pack without its index is garbage to git: take it back.
            let _ = fs::remove_file(&pack_path);
            return Err(GitError::Write {
                path: idx_path,
                source: e,
            });
        }
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(name)
    }
}

impl Drop for PackWriter {
    /// An unfinished pack (an error, a refusal) leaves nothing behind.
    fn drop(&mut self) {
        if self.out.is_some() {
            self.out = None;
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// The version-2 pack index: fan-out, sorted ids, CRC-32s, offsets (with the 64-bit table
/// for packs over 2 GiB), the pack's checksum and the index's own.
fn write_index(entries: &mut [(Oid, u32, u64)], pack_checksum: &[u8]) -> Vec<u8> {
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut idx = Vec::with_capacity(8 + 1024 + entries.len() * 28 + 40);
    idx.extend_from_slice(&[0xff, b't', b'O', b'c', 0, 0, 0, 2]);
    let mut fanout = [0u32; 256];
    for (id, _, _) in entries.iter() {
        fanout[id.as_bytes()[0] as usize] += 1;
    }
    let mut total = 0u32;
    for f in fanout.iter_mut() {
        total += *f;
        *f = total;
    }
    for f in fanout {
        idx.extend_from_slice(&f.to_be_bytes());
    }
    for (id, _, _) in entries.iter() {
        idx.extend_from_slice(id.as_bytes());
    }
    for (_, crc, _) in entries.iter() {
        idx.extend_from_slice(&crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for (_, _, off) in entries.iter() {
        if *off < 0x8000_0000 {
            idx.extend_from_slice(&(*off as u32).to_be_bytes());
        } else {
            idx.extend_from_slice(&(0x8000_0000u32 | large.len() as u32).to_be_bytes());
            large.push(*off);
        }
    }
    for off in large {
        idx.extend_from_slice(&off.to_be_bytes());
    }
    idx.extend_from_slice(pack_checksum);
    let own = Sha1::digest(&idx);
    idx.extend_from_slice(&own);
    idx
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
    fn ids_are_gits() {
        let data = b"hello\n";
        assert_eq!(
            object_id(ObjectType::Blob, data),
            Oid::hash_object(ObjectType::Blob, data).unwrap()
        );
    }

    #[test]
    fn git_reads_what_we_pack_and_verify_pack_accepts_it() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let data: Vec<Vec<u8>> = (0..300)
            .map(|i| format!("blob number {i}\n").repeat(i + 1).into_bytes())
            .collect();
        let mut w = PackWriter::create(&dir.path().join("objects/pack")).unwrap();
        for d in &data {
            w.add_object(ObjectType::Blob, d).unwrap();
            w.add_object(ObjectType::Blob, d).unwrap(); // the duplicate is skipped
        }
        assert_eq!(w.len(), 300);
        let name = w.finish().unwrap();
        repo.odb().unwrap().refresh().unwrap();
        for d in &data {
            let id = Oid::hash_object(ObjectType::Blob, d).unwrap();
            assert_eq!(repo.find_blob(id).unwrap().content(), d.as_slice());
        }
        let idx = dir.path().join(format!("objects/pack/{name}.idx"));
        let out = std::process::Command::new("git")
            .arg("verify-pack")
            .arg("-v")
            .arg(&idx)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("objects/pack"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("tmp_"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn the_reused_compressor_makes_whole_streams_of_any_size() {
        use std::io::Read;
        // Incompressible data larger than the first reservation, then small objects, then
        // another level: each entry must inflate to exactly its object.
        let mut x: u32 = 7;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let objects: Vec<(&[u8], Compression)> = vec![
            (&noise, DEFAULT_LEVEL),
            (b"tiny", DEFAULT_LEVEL),
            (b"", DEFAULT_LEVEL),
            (&noise[..5000], Compression::best()),
            (b"again", DEFAULT_LEVEL),
            (&noise[..STORED_BELOW - 1], DEFAULT_LEVEL),
            (&noise[..STORED_BELOW], DEFAULT_LEVEL),
            (&noise[..3000], Compression::none()),
            (&noise[..70_000], Compression::none()),
        ];
        for (data, level) in objects {
            let c = compress_at(ObjectType::Blob, data, level).unwrap();
            let header = entry_header(ObjectType::Blob, data.len()).len();
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(&c.entry[header..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
            assert_eq!(c.id, Oid::hash_object(ObjectType::Blob, data).unwrap());
        }
    }

    #[test]
    fn small_objects_are_stored_as_zlib_writes_them() {
        // A stored stream is what zlib itself writes at level 0: same block, same checksum.
        for data in [
            &b""[..],
            b"x",
            b"100644 manifest.json\0twenty-byte-object-id",
        ] {
            let mut ours = Vec::new();
            stored_into(&mut ours, data);
            let mut z = Compress::new(Compression::none(), true);
            let mut theirs = Vec::with_capacity(data.len() + 64);
            let _ = z
                .compress_vec(data, &mut theirs, FlushCompress::Finish)
                .unwrap();
            assert_eq!(ours[2..], theirs[2..], "{data:?}");
        }
    }

    #[test]
    fn the_level_follows_git_config() {
        assert_eq!(configured_level(None, None).level(), DEFAULT_LEVEL.level());
        assert_eq!(configured_level(None, Some(9)).level(), 9);
        assert_eq!(configured_level(Some(0), Some(9)).level(), 0);
        assert_eq!(configured_level(Some(-1), None).level(), 6);
        assert_eq!(
            configured_level(Some(42), None).level(),
            DEFAULT_LEVEL.level()
        );
    }

    #[test]
    fn an_abandoned_pack_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::create(dir.path()).unwrap();
        w.add_object(ObjectType::Blob, b"x").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
