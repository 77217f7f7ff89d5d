//! Work over many manifests in bounded rounds, reading the next round while the pool works.
//!
//! libgit2's repository handle is not shared between threads, so blobs are read on the calling
//! thread. While the rayon pool works through one round, that thread reads the next one, so the
//! reads and the work overlap and only two rounds of blobs are in memory at once.

/// How many manifests are read and worked on per round: bounds memory whatever the corpus size,
/// and is large enough to keep both cores busy.
pub(crate) const ROUND: usize = 4096;

/// Runs `work` over `items` in rounds of [`ROUND`], in order. `read` fetches a round's inputs on
/// this thread (while the pool runs `work` on the round before), and `each` receives every
/// round's results on this thread, in order. The first error of `read` or `each` stops it:
/// a round already worked is handed to `each` before a read error is returned.
pub(crate) fn in_rounds<T, B, R, E>(
    items: &[T],
    mut read: impl FnMut(&[T]) -> Result<Vec<B>, E>,
    work: impl Fn(&[T], Vec<B>) -> Vec<R> + Sync,
    mut each: impl FnMut(&[T], Vec<R>) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    B: Send,
    R: Send,
{
    let rounds: Vec<&[T]> = items.chunks(ROUND).collect();
    let mut next = match rounds.first() {
        Some(r) => read(r)?,
        None => Vec::new(),
    };
    for (i, round) in rounds.iter().enumerate() {
        let inputs = std::mem::take(&mut next);
        let mut done: Vec<R> = Vec::new();
        let mut read_next: Result<Vec<B>, E> = Ok(Vec::new());
        rayon::in_place_scope(|scope| {
            scope.spawn(|_| done = work(round, inputs));
            if let Some(r) = rounds.get(i + 1) {
                read_next = read(r);
            }
        });
        each(round, done)?;
        next = read_next?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_is_read_worked_and_handed_back_in_order() {
        let items: Vec<usize> = (0..ROUND * 2 + 7).collect();
        let mut reads = Vec::new();
        let mut out = Vec::new();
        let result: Result<(), String> = in_rounds(
            &items,
            |r| {
                reads.push(r[0]);
                Ok(r.iter().map(|x| x * 10).collect())
            },
            |r, inputs| r.iter().zip(inputs).map(|(x, b)| x + b).collect(),
            |r, done| {
                assert_eq!(r.len(), done.len());
                out.extend(done);
                Ok(())
            },
        );
        assert_eq!(result, Ok(()));
        assert_eq!(reads, vec![0, ROUND, ROUND * 2]);
        assert_eq!(out, items.iter().map(|x| x * 11).collect::<Vec<_>>());
    }

    #[test]
    fn an_error_stops_the_rounds() {
        let items: Vec<usize> = (0..ROUND * 3).collect();
        let mut handed = 0;
        let result = in_rounds(
            &items,
            |r| {
                if r[0] == ROUND * 2 {
                    Err("unreadable")
                } else {
                    Ok(r.to_vec())
                }
            },
            |_, inputs| inputs,
            |_, _| {
                handed += 1;
                Ok(())
            },
        );
        assert_eq!(result, Err("unreadable"));
        // The read of the third round fails while the second is worked: the first two are
        // handed back, the third never is.
        assert_eq!(handed, 2);
    }

    #[test]
    fn no_items_no_rounds() {
        let mut called = false;
        let result: Result<(), ()> = in_rounds(
            &[] as &[u8],
            |_| {
                called = true;
                Ok(Vec::<u8>::new())
            },
            |_, i| i,
            |_, _| Ok(()),
        );
        assert_eq!(result, Ok(()));
        assert!(!called);
    }
}
