//! Where objects lie in the repository's packs, read from the packs' `.idx` files (version 2),
//! so a round of blobs can be read in pack order.
//!
//! libgit2 reads a pack through a bounded set of mapped windows (`main.rs` bounds them to keep
//! memory in check). Once a pack is larger than that bound, reading blobs in path order, which
//! need not be the pack's order, remaps a window for nearly every object: at 1M manifests (an
//! 847 MB pack) `strace` counted ~198k `mmap`/`munmap` pairs in the first 40 s of `apply
//! --branch`, and the TLB shootdowns of the unmaps were 9 % of its samples; at 100k, 14 in all.

use std::fs;
use std::path::Path;

use git2::Oid;

/// One pack's index: its sorted object ids and their offsets.
struct Idx {
    bytes: Vec<u8>,
    count: usize,
}

const HEADER: usize = 8;
const FANOUT: usize = 256 * 4;

impl Idx {
    /// Reads a version-2 `.idx`; `None` for anything else (the order is then unknown, which
    /// only costs speed).
    fn read(path: &Path) -> Option<Idx> {
        let bytes = fs::read(path).ok()?;
        if bytes.get(..HEADER)? != b"\xfftOc\x00\x00\x00\x02" {
            return None;
        }
        let count = be32(&bytes, HEADER + 255 * 4)? as usize;
        // ids, CRCs and 4-byte offsets must all be there.
        if bytes.len() < HEADER + FANOUT + count * 28 {
            return None;
        }
        Some(Idx { bytes, count })
    }

    /// The offset of `id` in the pack, if this pack holds it.
    fn offset(&self, id: &Oid) -> Option<u64> {
        let key = id.as_bytes();
        let first = usize::from(key[0]);
        let lo = if first == 0 {
            0
        } else {
            be32(&self.bytes, HEADER + (first - 1) * 4)? as usize
        };
        let hi = be32(&self.bytes, HEADER + first * 4)? as usize;
        let ids = HEADER + FANOUT;
        let (mut lo, mut hi) = (lo, hi.min(self.count));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = self.bytes.get(ids + mid * 20..ids + mid * 20 + 20)?;
            match at.cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.offset_at(mid),
            }
        }
        None
    }

    fn offset_at(&self, i: usize) -> Option<u64> {
        let small = HEADER + FANOUT + self.count * 24;
        let v = be32(&self.bytes, small + i * 4)?;
        if v & 0x8000_0000 == 0 {
            return Some(u64::from(v));
        }
        let large = small + self.count * 4 + (v & 0x7fff_ffff) as usize * 8;
        let b = self.bytes.get(large..large + 8)?;
        Some(u64::from_be_bytes(b.try_into().ok()?))
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

/// The repository's pack indexes, read once.
pub(crate) struct PackOrder {
    packs: Vec<Idx>,
}

impl PackOrder {
    /// Reads every `.idx` under `objects/pack` of `git_dir` (none: every object's place is
    /// unknown, and reads keep their order).
    pub(crate) fn read(git_dir: &Path) -> PackOrder {
        let dir = git_dir.join("objects").join("pack");
        let mut paths: Vec<_> = fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "idx"))
                    .collect()
            })
            .unwrap_or_default();
        paths.sort();
        PackOrder {
            packs: paths.iter().filter_map(|p| Idx::read(p)).collect(),
        }
    }

    /// Where `id` lies: (pack, offset); objects in no pack (loose) sort first.
    pub(crate) fn place(&self, id: &Oid) -> Place {
        self.packs
            .iter()
            .enumerate()
            .find_map(|(i, p)| p.offset(id).map(|o| (i + 1, o)))
            .unwrap_or((0, 0))
    }
}

/// An object's place: (pack, offset), `(0, 0)` when in no pack.
pub(crate) type Place = (usize, u64);

/// The places of a list of objects, read round after round ([`crate::git::rounds`]), each
/// round's objects visited in pack order.
pub(crate) struct InPackOrder {
    places: Vec<Place>,
    /// Where the next round starts in `places`.
    next: usize,
}

impl PackOrder {
    /// The places of `ids` (one per item of the list the rounds go through, in its order);
    /// the packs' indexes are not needed after this.
    pub(crate) fn of(&self, ids: impl Iterator<Item = Oid>) -> InPackOrder {
        InPackOrder {
            places: ids.map(|id| self.place(&id)).collect(),
            next: 0,
        }
    }
}

impl InPackOrder {
    /// Reads one blob for each item of the next round (`read`), visiting them in pack order,
    /// and returns the blobs in the round's order. Rounds are read once each, in order.
    pub(crate) fn read<T, E>(
        &mut self,
        round: &[T],
        mut read: impl FnMut(&T) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<Vec<u8>>, E> {
        let order: Vec<usize> = match self.places.get(self.next..self.next + round.len()) {
            Some(places) => in_pack_order(places),
            // Not a round of the list the places are of: its own order.
            None => (0..round.len()).collect(),
        };
        self.next += round.len();
        let mut out = vec![Vec::new(); round.len()];
        for i in order {
            out[i] = read(&round[i])?;
        }
        Ok(out)
    }
}

/// The positions `0..places.len()` in the order of their places (stable for equal places, so
/// loose objects keep their order).
fn in_pack_order(places: &[Place]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..places.len()).collect();
    order.sort_by_key(|&i| places[i]);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_the_ones_git_shows() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        run(&["init", "-q"]);
        let mut ids = Vec::new();
        for i in 0..50 {
            let text = format!("object {i} {}", "x".repeat(i * 7));
            std::fs::write(dir.path().join(format!("f{i}")), text).unwrap();
            ids.push(
                run(&["hash-object", "-w", &format!("f{i}")])
                    .trim()
                    .to_string(),
            );
        }
        run(&["add", "-A"]);
        run(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "commit",
            "-q",
            "-m",
            "objects",
        ]);
        run(&["repack", "-a", "-d", "-q"]);
        let order = PackOrder::read(&dir.path().join(".git"));
        assert_eq!(order.packs.len(), 1);
        // git verify-pack -v lists every object with its offset.
        let pack = std::fs::read_dir(dir.path().join(".git/objects/pack"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "idx"))
            .unwrap();
        let listing = run(&["verify-pack", "-v", pack.to_str().unwrap()]);
        let mut checked = 0;
        for line in listing.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 5 && ids.iter().any(|id| id == f[0]) {
                let id = Oid::from_str(f[0]).unwrap();
                assert_eq!(
                    order.place(&id),
                    (1, f[4].parse::<u64>().unwrap()),
                    "{line}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, ids.len());
        // The order sorts by those offsets; an id in no pack goes first.
        let mut asked: Vec<Oid> = ids.iter().map(|s| Oid::from_str(s).unwrap()).collect();
        asked.push(Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap());
        // One round of them, read through the rounds' reader: visited in pack order, handed
        // back in the round's order.
        let mut visited = Vec::new();
        let blobs = order
            .of(asked.iter().copied())
            .read(&asked, |id| {
                visited.push(asked.iter().position(|a| a == id).unwrap());
                Ok::<_, ()>(id.as_bytes().to_vec())
            })
            .unwrap();
        let handed: Vec<Vec<u8>> = asked.iter().map(|id| id.as_bytes().to_vec()).collect();
        assert_eq!(blobs, handed);
        let sorted = visited;
        assert_eq!(sorted[0], asked.len() - 1);
        let offsets: Vec<u64> = sorted[1..]
            .iter()
            .map(|&i| order.place(&asked[i]).1)
            .collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    }
}
