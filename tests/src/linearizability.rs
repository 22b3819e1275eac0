//! A linearizability checker for per-key register histories (tenant KV): the
//! Wing–Gong search with Lowe's just-in-time pruning and a memo of visited
//! (linearized set, state) pairs, as in porcupine and Knossos.
//!
//! Model: each key is a register holding `Option<value>` (absent = `None`). The
//! workload writes unique values, so a revision observed by a read names exactly
//! one value, and a compare-and-set on a revision is a compare-and-set on that
//! value. Operations:
//! - `Write(v)`, `Delete`: always take effect;
//! - `Read`: observes the current value;
//! - `Cas { expected, new }`: takes effect iff the current value equals
//!   `expected`, and its observed outcome (`Some(true|false)`) must agree.
//!
//! Outcomes: an operation that completed is `Done` with its return time; one whose
//! outcome is unknown (a timeout, a broken connection) may have taken effect at any
//! moment after its invocation, or never: it is given an infinite return time and
//! any result, so the search may linearize it anywhere later — including after
//! every other operation, where it changes nothing observable. Operations known
//! not to have happened (refused before being proposed) are left out by the caller.

use std::collections::HashSet;
use std::fmt;

/// A register value; the workload makes every written value unique.
pub type Value = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Write(Value),
    Delete,
    /// `observed`: what the read returned (ignored if the outcome is unknown).
    Read {
        observed: Option<Value>,
    },
    /// `succeeded`: whether the CAS applied (`None` if the outcome is unknown).
    Cas {
        expected: Option<Value>,
        new: Value,
        succeeded: Option<bool>,
    },
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Which client ran it (for reports).
    pub client: usize,
    pub op: Op,
    /// Invocation time (any monotonic unit, e.g. µs since the start).
    pub invoke: u64,
    /// Completion time, or `None` if the outcome is unknown.
    pub complete: Option<u64>,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = self
            .complete
            .map_or_else(|| "?".to_owned(), |t| t.to_string());
        write!(f, "client {} [{}..{}] ", self.client, self.invoke, done)?;
        match self.op {
            Op::Write(v) => write!(f, "write {v}"),
            Op::Delete => write!(f, "delete"),
            Op::Read { observed } if self.complete.is_some() => {
                write!(f, "read -> {}", show(observed))
            }
            Op::Read { .. } => write!(f, "read -> (unknown)"),
            Op::Cas {
                expected,
                new,
                succeeded,
            } => write!(
                f,
                "cas {} -> {new}: {}",
                show(expected),
                match succeeded {
                    Some(true) => "ok",
                    Some(false) => "mismatch",
                    None => "unknown",
                }
            ),
        }
    }
}

fn show(v: Option<Value>) -> String {
    v.map_or_else(|| "absent".to_owned(), |v| v.to_string())
}

/// Why a history is not linearizable: the operations that could not be ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The longest prefix of operations (in a linearization order) the search
    /// could justify.
    pub linearized: Vec<Operation>,
    /// The operations that no order could fit after that prefix (each completed
    /// before some other had to take effect, or observed an impossible value).
    pub stuck: Vec<Operation>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "not linearizable. Longest justified order:")?;
        for op in &self.linearized {
            writeln!(f, "  {op}")?;
        }
        writeln!(f, "then none of these can take effect next:")?;
        for op in &self.stuck {
            writeln!(f, "  {op}")?;
        }
        Ok(())
    }
}

/// Applies `op` to `state`: the new state, or `None` if the op's observed result
/// contradicts `state`.
fn step(state: Option<Value>, op: &Operation) -> Option<Option<Value>> {
    let known = op.complete.is_some();
    match op.op {
        Op::Write(v) => Some(Some(v)),
        Op::Delete => Some(None),
        Op::Read { observed } => (!known || observed == state).then_some(state),
        Op::Cas {
            expected,
            new,
            succeeded,
        } => {
            let applies = expected == state;
            match succeeded {
                Some(s) if known && s != applies => None,
                _ => Some(if applies { Some(new) } else { state }),
            }
        }
    }
}

/// Checks one key's history, starting from an absent value.
///
/// # Errors
/// A [`Violation`] naming the operations that cannot be linearized.
pub fn check(history: &[Operation]) -> Result<(), Violation> {
    check_from(None, history)
}

/// Removes unknown-outcome writes whose effect nobody could have seen: their value
/// is never read or expected by a CAS, and no CAS that failed completed after they
/// were invoked. Such a write can always be linearized after every other
/// operation, where it changes nothing, so the history is linearizable with it iff
/// it is without it. (Each unknown write left in multiplies the search space: it
/// is concurrent with everything after its invocation.)
fn prune_unobservable(history: &[Operation]) -> Vec<Operation> {
    let mut observed = HashSet::new();
    let mut failed_cas_completions = Vec::new();
    for op in history {
        match op.op {
            Op::Read { observed: Some(v) } if op.complete.is_some() => {
                observed.insert(v);
            }
            Op::Cas {
                expected,
                succeeded,
                ..
            } => {
                if let Some(v) = expected {
                    observed.insert(v);
                }
                if succeeded == Some(false) {
                    failed_cas_completions.push(op.complete.unwrap_or(u64::MAX));
                }
            }
            _ => {}
        }
    }
    history
        .iter()
        .filter(|op| {
            if op.complete.is_some() {
                return true;
            }
            let written = match op.op {
                Op::Write(v) | Op::Cas { new: v, .. } => v,
                // An unknown read changes nothing; an unknown delete is kept.
                Op::Read { .. } => return false,
                Op::Delete => return true,
            };
            observed.contains(&written) || failed_cas_completions.iter().any(|c| *c >= op.invoke)
        })
        .cloned()
        .collect()
}

#[derive(Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
}

/// Checks one key's history starting from `initial`.
///
/// First without the unknown-outcome writes and CASes whose value nobody
/// observed: if that subset is linearizable, so is the history (those operations
/// simply never took effect, which the model allows), and the search is fast.
/// Such operations stay callable to the end of the history, so with a few dozen
/// of them (kept by the conservative pruning when failed CASes follow them) the
/// full search can take hours on a long chaos history. When the subset fails, the
/// operations it got stuck on (typically a CAS that failed because one of those
/// writes did take effect) may need one of them: the held-back operations invoked
/// last before the stuck ones completed are added back, a few at a time, and the
/// subset searched again. Any subset that passes is a pass, for the same reason.
/// Only if that runs out does the full search decide.
///
/// # Errors
/// A [`Violation`] naming the operations that cannot be linearized.
pub fn check_from(initial: Option<Value>, history: &[Operation]) -> Result<(), Violation> {
    /// Held-back operations added back per refinement, and refinements at most.
    const ADD_BACK: usize = 2;
    const REFINEMENTS: usize = 32;
    let pruned = prune_unobservable(history);
    let observed = observed_values(&pruned);
    let (mut subset, mut held_back): (Vec<Operation>, Vec<Operation>) =
        pruned.iter().cloned().partition(|o| {
            o.complete.is_some()
                || match o.op {
                    Op::Write(v) | Op::Cas { new: v, .. } => observed.contains(&v),
                    Op::Delete | Op::Read { .. } => true,
                }
        });
    for _ in 0..REFINEMENTS {
        if held_back.is_empty() {
            break;
        }
        let Err(v) = search(initial, &subset) else {
            return Ok(());
        };
        let Some(until) = v.stuck.iter().filter_map(|o| o.complete).max() else {
            break;
        };
        // The candidates that could have taken effect before the stuck
        // operations completed, latest invoked first.
        held_back.sort_by_key(|o| std::cmp::Reverse(o.invoke));
        let picked: Vec<usize> = (0..held_back.len())
            .filter(|&i| held_back[i].invoke < until)
            .take(ADD_BACK)
            .collect();
        if picked.is_empty() {
            break;
        }
        for i in picked.into_iter().rev() {
            subset.push(held_back.remove(i));
        }
        subset.sort_by_key(|o| o.invoke);
    }
    search(initial, &pruned)
}

/// Values some completed read returned or some CAS expected.
fn observed_values(history: &[Operation]) -> HashSet<Value> {
    history
        .iter()
        .filter_map(|o| match o.op {
            Op::Read { observed: Some(v) } if o.complete.is_some() => Some(v),
            Op::Cas {
                expected: Some(v), ..
            } => Some(v),
            _ => None,
        })
        .collect()
}

/// The Wing–Gong search over `history` (already pruned).
fn search(initial: Option<Value>, history: &[Operation]) -> Result<(), Violation> {
    let n = history.len();
    if n == 0 {
        return Ok(());
    }
    // Events sorted by time; at equal times calls come before returns (two
    // operations that touch at one instant are treated as concurrent).
    let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in history.iter().enumerate() {
        order.push((op.invoke, true, i));
        order.push((op.complete.unwrap_or(u64::MAX), false, i));
    }
    order.sort_by_key(|(t, is_call, i)| (*t, !*is_call, *i));
    // A doubly linked list over the events, with a head sentinel at index 0.
    let head = 0usize;
    let mut events = vec![Event {
        op: usize::MAX,
        is_call: false,
        prev: usize::MAX,
        next: 1,
    }];
    let mut call_of = vec![0usize; n];
    let mut return_of = vec![0usize; n];
    for (k, (_, is_call, i)) in order.iter().enumerate() {
        let idx = k + 1;
        events.push(Event {
            op: *i,
            is_call: *is_call,
            prev: idx - 1,
            next: if k + 1 < order.len() {
                idx + 1
            } else {
                usize::MAX
            },
        });
        if *is_call {
            call_of[*i] = idx;
        } else {
            return_of[*i] = idx;
        }
    }

    // The memo holds (set of linearized operations, register state). The set is
    // kept as a Zobrist hash: each operation has a random 128-bit key and the set's
    // hash is the XOR of its members' keys, updated in O(1). Storing the set itself
    // cost n/8 bytes per visited state (tens of GiB for a long chaos history that
    // needs some backtracking). A collision could only make the search skip a
    // state it never explored, so at worst report a violation that is not one
    // (odds ~states²/2^128), never miss one.
    let keys: Vec<u128> = {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            // splitmix64
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        (0..n)
            .map(|_| (u128::from(next()) << 64) | u128::from(next()))
            .collect()
    };
    let mut linearized: u128 = 0;
    let mut seen: HashSet<(u128, Option<Value>)> = HashSet::new();
    // Each search node tries operations in three passes: those with a known
    // outcome; then also unknown ones whose value someone observed (a read, a
    // CAS's expected value); then every one. An unknown write or CAS is callable
    // from its invocation to the end of the history, so trying the unobserved
    // ones first made the search wander through orders in which they took effect
    // early and the history failed much later (a 2-minute chaos history with ~30
    // of them ran for many minutes). The order of trying changes nothing about
    // which histories pass: every candidate is still tried.
    let observed = observed_values(history);
    let pass_of: Vec<u8> = history
        .iter()
        .map(|o| match (o.complete, o.op) {
            (Some(_), _) => 0,
            (None, Op::Write(v) | Op::Cas { new: v, .. }) if observed.contains(&v) => 1,
            _ => 2,
        })
        .collect();
    let mut pass: u8 = 0;
    let mut stack: Vec<(usize, Option<Value>, u8)> = Vec::new();
    let mut state = initial;
    let mut best: Vec<usize> = Vec::new();
    let mut cur = events[head].next;

    let unlink = |events: &mut Vec<Event>, e: usize| {
        let (p, nx) = (events[e].prev, events[e].next);
        events[p].next = nx;
        if nx != usize::MAX {
            events[nx].prev = p;
        }
    };
    let relink = |events: &mut Vec<Event>, e: usize| {
        let (p, nx) = (events[e].prev, events[e].next);
        events[p].next = e;
        if nx != usize::MAX {
            events[nx].prev = e;
        }
    };

    while events[head].next != usize::MAX {
        if cur == usize::MAX {
            // Cannot happen: the list always ends with a return event.
            break;
        }
        let e = events[cur];
        if e.is_call {
            let i = e.op;
            if pass_of[i] > pass {
                cur = e.next;
                continue;
            }
            if let Some(next_state) = step(state, &history[i]) {
                linearized ^= keys[i];
                if seen.insert((linearized, next_state)) {
                    stack.push((cur, state, pass));
                    state = next_state;
                    unlink(&mut events, call_of[i]);
                    unlink(&mut events, return_of[i]);
                    if stack.len() > best.len() {
                        best = stack.iter().map(|(c, _, _)| events[*c].op).collect();
                    }
                    cur = events[head].next;
                    pass = 0;
                    continue;
                }
                linearized ^= keys[i];
            }
            cur = e.next;
        } else if pass < 2 {
            // A return reached before every kind of operation was tried: try the
            // next kind too, from the start.
            pass += 1;
            cur = events[head].next;
        } else {
            // A return reached: the operation it ends must already have taken
            // effect. Backtrack.
            let Some((call, prev_state, was)) = stack.pop() else {
                return Err(violation(history, &best));
            };
            pass = was;
            let i = events[call].op;
            linearized ^= keys[i];
            state = prev_state;
            relink(&mut events, return_of[i]);
            relink(&mut events, call_of[i]);
            cur = events[call].next;
        }
    }
    Ok(())
}

fn violation(history: &[Operation], best: &[usize]) -> Violation {
    let done: HashSet<usize> = best.iter().copied().collect();
    // The earliest-completing operations not in the best prefix: one of them had
    // to take effect next and could not.
    let mut rest: Vec<usize> = (0..history.len()).filter(|i| !done.contains(i)).collect();
    rest.sort_by_key(|i| history[*i].complete.unwrap_or(u64::MAX));
    let first_deadline = rest
        .first()
        .and_then(|i| history[*i].complete)
        .unwrap_or(u64::MAX);
    let stuck = rest
        .into_iter()
        .filter(|i| history[*i].invoke <= first_deadline)
        .map(|i| history[i].clone())
        .collect();
    Violation {
        linearized: best.iter().map(|i| history[*i].clone()).collect(),
        stuck,
    }
}

/// Parses a history printed one operation a line by [`Operation`]'s `Display`
/// (as `CAIRN_CHAOS_HISTORY` writes it), for offline analysis.
///
/// # Errors
/// The first line that is not an operation.
pub fn parse_history(text: &str) -> Result<Vec<Operation>, String> {
    let value = |s: &str| -> Result<Option<Value>, String> {
        if s == "absent" {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| format!("bad value {s:?}"))
        }
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let bad = || format!("not an operation: {line:?}");
            let rest = line.strip_prefix("client ").ok_or_else(bad)?;
            let (client, rest) = rest.split_once(" [").ok_or_else(bad)?;
            let (times, op) = rest.split_once("] ").ok_or_else(bad)?;
            let (invoke, complete) = times.split_once("..").ok_or_else(bad)?;
            let complete = match complete {
                "?" => None,
                c => Some(c.parse().map_err(|_| bad())?),
            };
            let op = if let Some(v) = op.strip_prefix("write ") {
                Op::Write(value(v)?.ok_or_else(bad)?)
            } else if op == "delete" {
                Op::Delete
            } else if let Some(v) = op.strip_prefix("read -> ") {
                Op::Read {
                    observed: if v == "(unknown)" { None } else { value(v)? },
                }
            } else if let Some(c) = op.strip_prefix("cas ") {
                let (expected, rest) = c.split_once(" -> ").ok_or_else(bad)?;
                let (new, result) = rest.split_once(": ").ok_or_else(bad)?;
                Op::Cas {
                    expected: value(expected)?,
                    new: value(new)?.ok_or_else(bad)?,
                    succeeded: match result {
                        "ok" => Some(true),
                        "mismatch" => Some(false),
                        _ => None,
                    },
                }
            } else {
                return Err(bad());
            };
            Ok(Operation {
                client: client.parse().map_err(|_| bad())?,
                op,
                invoke: invoke.parse().map_err(|_| bad())?,
                complete,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, op: Op, invoke: u64, complete: u64) -> Operation {
        Operation {
            client,
            op,
            invoke,
            complete: Some(complete),
        }
    }

    fn unknown(client: usize, op: Op, invoke: u64) -> Operation {
        Operation {
            client,
            op,
            invoke,
            complete: None,
        }
    }

    fn read(v: Option<Value>) -> Op {
        Op::Read { observed: v }
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = [
            op(0, read(None), 0, 1),
            op(0, Op::Write(1), 2, 3),
            op(1, read(Some(1)), 4, 5),
            op(1, Op::Delete, 6, 7),
            op(0, read(None), 8, 9),
        ];
        assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn concurrent_reads_may_see_either_side_of_a_write() {
        let h = [
            op(0, Op::Write(1), 0, 10),
            op(1, read(None), 1, 2),
            op(2, read(Some(1)), 3, 4),
            // After the read that saw 1 completed, nobody may see absent again.
            op(1, read(Some(1)), 5, 6),
        ];
        assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn a_stale_read_is_a_violation() {
        let h = [
            op(0, Op::Write(1), 0, 1),
            op(0, Op::Write(2), 2, 3),
            op(1, read(Some(1)), 4, 5),
        ];
        let v = check(&h).expect_err("stale read");
        assert!(
            v.stuck.iter().any(|o| o.op == read(Some(1))),
            "the stale read is named: {v}"
        );
    }

    #[test]
    fn a_read_going_back_in_time_is_a_violation() {
        // Concurrent with the write, but a later read already saw the new value.
        let h = [
            op(0, Op::Write(1), 0, 10),
            op(1, read(Some(1)), 1, 2),
            op(2, read(None), 3, 4),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_lost_write_is_a_violation() {
        let h = [
            op(0, Op::Write(1), 0, 1),
            op(0, Op::Write(2), 2, 3),
            // Acknowledged 2 is gone: the final read sees 1.
            op(1, read(Some(1)), 10, 11),
        ];
        assert!(check(&h).is_err());
        let h = [op(0, Op::Write(7), 0, 1), op(1, read(None), 5, 6)];
        assert!(check(&h).is_err(), "an acknowledged write vanished");
    }

    #[test]
    fn a_write_that_appears_twice_is_a_violation() {
        // 1 written once, overwritten by 2, and then seen again.
        let h = [
            op(0, Op::Write(1), 0, 1),
            op(1, Op::Write(2), 2, 3),
            op(2, read(Some(2)), 4, 5),
            op(2, read(Some(1)), 6, 7),
        ];
        let v = check(&h).expect_err("duplicate apply");
        assert!(v.to_string().contains("read -> 1"), "{v}");
    }

    #[test]
    fn unknown_outcomes_may_or_may_not_have_happened() {
        // Never observed: fine.
        let h = [
            unknown(0, Op::Write(1), 0),
            op(1, read(None), 5, 6),
            op(1, read(None), 7, 8),
        ];
        assert_eq!(check(&h), Ok(()));
        // Observed later: fine too.
        let h = [unknown(0, Op::Write(1), 0), op(1, read(Some(1)), 5, 6)];
        assert_eq!(check(&h), Ok(()));
        // But it cannot take effect before it was invoked.
        let h = [op(1, read(Some(1)), 0, 1), unknown(0, Op::Write(1), 5)];
        assert!(check(&h).is_err());
        // Nor twice: seen, overwritten, then seen again.
        let h = [
            unknown(0, Op::Write(1), 0),
            op(1, read(Some(1)), 2, 3),
            op(1, Op::Write(2), 4, 5),
            op(1, read(Some(1)), 6, 7),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn many_unobserved_unknown_writes_do_not_blow_up_the_search() {
        // 40 writes that timed out and were never seen, overlapping everything.
        let mut h: Vec<Operation> = (0..40)
            .map(|i| unknown(i, Op::Write(100 + i as u64), i as u64))
            .collect();
        h.push(op(50, Op::Write(1), 50, 51));
        h.push(op(51, read(Some(1)), 52, 53));
        assert_eq!(check(&h), Ok(()));
        // One of them observed later: still fine, and still quick.
        h.push(op(52, read(Some(107)), 60, 61));
        assert_eq!(check(&h), Ok(()));
    }

    fn failed_cas(expected: Value, new: Value) -> Op {
        Op::Cas {
            expected: Some(expected),
            new,
            succeeded: Some(false),
        }
    }

    /// 30 unknown writes (1000..1030, never observed), then 200 rounds each of a
    /// write of `k`, a CAS that fails and a read of `k`; and the time after them.
    fn live_unknown_writes_then_known_rounds() -> (Vec<Operation>, u64) {
        let mut h: Vec<Operation> = (0..30)
            .map(|i| unknown(i, Op::Write(1000 + i as u64), i as u64))
            .collect();
        let mut t = 100;
        for k in 0..200u64 {
            h.push(op(40, Op::Write(k), t, t + 1));
            h.push(op(41, failed_cas(999_999, 5000 + k), t + 2, t + 3));
            h.push(op(42, read(Some(k)), t + 4, t + 5));
            t += 10;
        }
        (h, t)
    }

    /// As in a chaos history: unknown writes kept alive by failed CASes that
    /// complete after them (so they cannot be pruned), a long run of known
    /// operations, and one unknown write observed only at the end. Trying the
    /// unobserved ones first explored 2^30 orders.
    #[test]
    fn one_observed_unknown_write_among_many_live_ones_is_found_quickly() {
        let (mut h, t) = live_unknown_writes_then_known_rounds();
        h.push(op(43, read(Some(1017)), t, t + 1));
        assert_eq!(check(&h), Ok(()));
    }

    /// As in a chaos history (seed 101): unknown writes nobody observed, and a
    /// failed CAS that only one of them can explain (the value it expected was
    /// the last one read). The subset without them fails on that CAS; adding
    /// back writes invoked before it completed passes. Without any such write
    /// it stays a violation. (This small history is quick either way; the real
    /// one, 23k operations, did not finish in minutes with the full search and
    /// checks in 1.1 s with the refinement.)
    #[test]
    fn a_failed_cas_only_an_unobserved_unknown_write_explains_passes_and_fails_without_it() {
        let (mut h, t) = live_unknown_writes_then_known_rounds();
        // 199 was read last; this CAS expected it and failed: only a write
        // whose outcome is unknown can explain that.
        let stuck = op(43, failed_cas(199, 9000), t + 10, t + 11);
        let known = h[30..].to_vec();
        assert!(check(&[known, vec![stuck.clone()]].concat()).is_err());
        h.push(stuck);
        assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn printed_histories_parse_back() {
        let h = vec![
            op(0, Op::Write(7), 1, 2),
            op(1, read(Some(7)), 3, 4),
            op(2, read(None), 3, 4),
            unknown(3, Op::Delete, 5),
            op(
                4,
                Op::Cas {
                    expected: Some(7),
                    new: 8,
                    succeeded: Some(false),
                },
                6,
                9,
            ),
            unknown(
                5,
                Op::Cas {
                    expected: None,
                    new: 9,
                    succeeded: None,
                },
                7,
            ),
        ];
        let text: String = h.iter().map(|o| format!("{o}\n")).collect();
        assert_eq!(parse_history(&text), Ok(h));
        assert!(parse_history("client x [1..2] write 3").is_err());
    }

    #[test]
    fn compare_and_set_outcomes_must_match_the_state() {
        let cas = |expected, new, succeeded| Op::Cas {
            expected,
            new,
            succeeded,
        };
        let h = [
            op(0, Op::Write(1), 0, 1),
            op(0, cas(Some(1), 2, Some(true)), 2, 3),
            op(1, cas(Some(1), 3, Some(false)), 4, 5),
            op(1, read(Some(2)), 6, 7),
        ];
        assert_eq!(check(&h), Ok(()));
        // Two CAS from the same expected value cannot both succeed.
        let h = [
            op(0, Op::Write(1), 0, 1),
            op(0, cas(Some(1), 2, Some(true)), 2, 5),
            op(1, cas(Some(1), 3, Some(true)), 2, 5),
        ];
        assert!(check(&h).is_err());
        // A CAS reported as a mismatch while the value matched is a violation.
        let h = [
            op(0, Op::Write(1), 0, 1),
            op(0, cas(Some(1), 2, Some(false)), 2, 3),
        ];
        assert!(check(&h).is_err());
        // An unknown CAS may go either way.
        let h = [
            op(0, Op::Write(1), 0, 1),
            unknown(0, cas(Some(1), 2, None), 2),
            op(1, read(Some(2)), 5, 6),
        ];
        assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn a_long_concurrent_history_is_checked_quickly() {
        // 8 clients, 400 operations, overlapping windows: linearizable by
        // construction (each write's effect is read back only after it returns).
        let mut h = Vec::new();
        let mut t = 0u64;
        let mut last = None;
        for round in 0..50u64 {
            let v = round + 1;
            h.push(op(0, Op::Write(v), t, t + 5));
            for c in 1..8 {
                // Concurrent with the write: may see old or new.
                let observed = if c % 2 == 0 { last } else { Some(v) };
                h.push(op(
                    usize::try_from(c).expect("small"),
                    read(observed),
                    t + 1,
                    t + 4,
                ));
            }
            last = Some(v);
            t += 10;
        }
        assert_eq!(check(&h), Ok(()));
    }

    /// A small deterministic PRNG (xorshift) so the randomized tests replay.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A history generated from a real register: each operation takes effect at
    /// a distinct instant inside its [invoke, complete] window, and records what
    /// the register returned then. Linearizable by construction.
    fn generated(seed: u64, ops: usize) -> Vec<Operation> {
        let mut rng = Rng(seed | 1);
        let mut register: Option<Value> = None;
        let mut next_value = 1;
        let mut h = Vec::new();
        for k in 0..ops {
            let at = (k as u64 + 1) * 10;
            let invoke = at - rng.below(25).min(at);
            let complete = at + rng.below(25);
            let client = usize::try_from(rng.below(6)).expect("small");
            let op = match rng.below(5) {
                0 | 1 => {
                    let v = next_value;
                    next_value += 1;
                    register = Some(v);
                    Op::Write(v)
                }
                2 => {
                    let expected = if rng.below(2) == 0 { register } else { Some(0) };
                    let v = next_value;
                    next_value += 1;
                    let applies = expected == register;
                    if applies {
                        register = Some(v);
                    }
                    Op::Cas {
                        expected,
                        new: v,
                        succeeded: Some(applies),
                    }
                }
                3 if rng.below(4) == 0 => {
                    register = None;
                    Op::Delete
                }
                _ => Op::Read { observed: register },
            };
            let complete = if rng.below(20) == 0 && !matches!(op, Op::Read { .. }) {
                None
            } else {
                Some(complete)
            };
            h.push(Operation {
                client,
                op,
                invoke,
                complete,
            });
        }
        h
    }

    #[test]
    fn generated_linearizable_histories_pass() {
        for seed in 1..=200 {
            let h = generated(seed, 60);
            if let Err(v) = check(&h) {
                panic!("seed {seed}: false violation\n{v}");
            }
        }
    }

    #[test]
    fn a_read_of_a_value_never_written_is_always_caught() {
        for seed in 1..=200 {
            let mut h = generated(seed, 60);
            let Some(i) = h
                .iter()
                .position(|o| matches!(o.op, Op::Read { .. }) && o.complete.is_some())
            else {
                continue;
            };
            h[i].op = Op::Read {
                observed: Some(999_999),
            };
            assert!(check(&h).is_err(), "seed {seed}: corrupted read accepted");
        }
    }
}
