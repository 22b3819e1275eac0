//! Who may hold an email.

use super::EmailEntry;

/// What reserving an email for `user_id` does, given its current holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Store the new entry.
    Take,
    /// `user_id` already holds it: nothing to change.
    Held,
    /// Another user holds it.
    Taken(EmailEntry),
}

/// The reservation rule: a free email is taken; its holder keeps it (idempotent);
/// another holder gives it up only if it is the one named in `replace`.
#[must_use]
pub fn reserve(current: Option<&EmailEntry>, user_id: &str, replace: Option<&str>) -> Reservation {
    match current {
        None => Reservation::Take,
        Some(c) if c.user_id == user_id => Reservation::Held,
        Some(c) if replace == Some(c.user_id.as_str()) => Reservation::Take,
        Some(c) => Reservation::Taken(c.clone()),
    }
}

/// What re-indexing a user does with the index it moves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reindex {
    /// The user no longer holds the earlier key (it changed its email, or was
    /// deleted), or both keys are one row: nothing to move.
    Nothing,
    /// Drop the earlier key's entry and hold the new key.
    Take,
    /// Drop the earlier key's entry; the user already holds the new key.
    Held,
    /// Drop the earlier key's entry; another user holds the new key, so this one
    /// is recorded beside it (the email is ambiguous).
    Share,
}

/// The re-index rule: only a user still holding the earlier key moves, and a
/// new key held by another user is shared, never taken over.
#[must_use]
pub fn reindex(
    from: Option<&EmailEntry>,
    to: Option<&EmailEntry>,
    same_row: bool,
    user_id: &str,
) -> Reindex {
    if same_row || from.is_none_or(|f| f.user_id != user_id) {
        return Reindex::Nothing;
    }
    match to {
        None => Reindex::Take,
        Some(t) if t.user_id == user_id => Reindex::Held,
        Some(_) => Reindex::Share,
    }
}

/// What releasing an email for a user does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// The user neither holds nor shares it.
    Nothing,
    /// The user holds it: the entry goes, and the first further holder (if any)
    /// takes its place.
    Entry { successor: Option<EmailEntry> },
    /// The user is a further holder: only its record goes.
    Other,
}

/// The release rule, given the holder and the further holders in key order.
#[must_use]
pub fn release(current: Option<&EmailEntry>, others: &[EmailEntry], user_id: &str) -> Release {
    match current {
        Some(c) if c.user_id == user_id => Release::Entry {
            successor: others.first().cloned(),
        },
        _ if others.iter().any(|o| o.user_id == user_id) => Release::Other,
        _ => Release::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(user: &str) -> EmailEntry {
        EmailEntry {
            user_id: user.to_owned(),
            region: "eu".to_owned(),
            reserved_at: 5,
        }
    }

    proptest! {
        #[test]
        fn only_a_holder_of_the_earlier_key_moves_and_never_takes_over(
            from in proptest::option::of("[a-c]"),
            to in proptest::option::of("[a-c]"),
            same_row: bool,
            user in "[a-c]",
        ) {
            let (f, t) = (from.as_deref().map(entry), to.as_deref().map(entry));
            let r = reindex(f.as_ref(), t.as_ref(), same_row, &user);
            let expected = if same_row || from.as_deref() != Some(user.as_str()) {
                Reindex::Nothing
            } else {
                match to.as_deref() {
                    None => Reindex::Take,
                    Some(h) if h == user => Reindex::Held,
                    Some(_) => Reindex::Share,
                }
            };
            prop_assert_eq!(r, expected);
        }

        #[test]
        fn a_release_hands_the_email_to_the_first_further_holder(
            holder in proptest::option::of("[a-c]"),
            others in proptest::collection::btree_set("[a-d]", 0..3),
            user in "[a-d]",
        ) {
            let current = holder.as_deref().map(entry);
            let others: Vec<EmailEntry> = others.iter().map(|o| entry(o)).collect();
            let r = release(current.as_ref(), &others, &user);
            if holder.as_deref() == Some(user.as_str()) {
                prop_assert_eq!(r, Release::Entry { successor: others.first().cloned() });
            } else if others.iter().any(|o| o.user_id == user) {
                prop_assert_eq!(r, Release::Other);
            } else {
                prop_assert_eq!(r, Release::Nothing);
            }
        }

        #[test]
        fn only_a_free_email_its_holder_or_a_named_takeover_succeed(
            holder in proptest::option::of("[a-c]"),
            user in "[a-c]",
            replace in proptest::option::of("[a-c]"),
        ) {
            let current = holder.as_deref().map(entry);
            let r = reserve(current.as_ref(), &user, replace.as_deref());
            let expected = match holder.as_deref() {
                None => Reservation::Take,
                Some(h) if h == user => Reservation::Held,
                Some(h) if replace.as_deref() == Some(h) => Reservation::Take,
                Some(h) => Reservation::Taken(entry(h)),
            };
            prop_assert_eq!(r, expected);
        }
    }
}
