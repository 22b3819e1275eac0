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
