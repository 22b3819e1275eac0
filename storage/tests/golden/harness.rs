//! The golden-file check shared by the storage and raft golden encoding tests
//! (raft includes this file by path): named byte strings compared with a
//! checked-in `name hex` file, which `CAIRN_GOLDEN_BLESS=1` rewrites instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Set to `1` to rewrite the golden files from the current encodings.
pub const BLESS_VAR: &str = "CAIRN_GOLDEN_BLESS";

const REGENERATE: &str = "CAIRN_GOLDEN_BLESS=1 cargo test --workspace --test golden";

/// Named encodings, in the order they are written to the golden file.
#[derive(Default)]
pub struct Golden {
    values: Vec<(String, Vec<u8>)>,
}

impl Golden {
    /// Adds one value's bytes under `name` (unique, no whitespace).
    pub fn add(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        let name = name.into();
        assert!(
            !name.is_empty() && !name.chars().any(char::is_whitespace),
            "golden value name {name:?} must be non-empty and without whitespace"
        );
        assert!(
            self.values.iter().all(|(n, _)| *n != name),
            "golden value name {name} given twice"
        );
        self.values.push((name, bytes));
    }

    /// Compares every value with `tests/golden/<file>.hex` of the crate under
    /// test and panics with a report naming each value whose bytes changed, or
    /// rewrites that file when [`BLESS_VAR`] is `1`.
    pub fn check(&self, file: &str, title: &str) {
        // The runtime value (cargo sets it for test runs): a binary built from
        // another checkout sharing the target dir must still read this one's files.
        let crate_dir = &std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let path = crate_dir.join("tests/golden").join(format!("{file}.hex"));
        // As seen from the workspace root (`storage/tests/golden/…`).
        let shown = match crate_dir.file_name() {
            Some(dir) => format!("{}/tests/golden/{file}.hex", dir.to_string_lossy()),
            None => path.display().to_string(),
        };
        if std::env::var(BLESS_VAR).is_ok_and(|v| v == "1") {
            std::fs::write(&path, self.render(title))
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            eprintln!("golden: wrote {} values to {shown}", self.values.len());
            return;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("golden: cannot read {shown} ({e}); to create it run `{REGENERATE}`")
        });
        let pinned = parse(&shown, &text);
        let report = self.compare(&pinned);
        assert!(
            report.is_empty(),
            "golden: {shown}: encodings differ from the pinned bytes.\n{report}\n\
             Every value above is a replicated, stored or peer format: old nodes and old data \
             dirs must still read it. If the change is intended, note it in \
             docs/on-disk-layout.md (\"Golden encodings\") and run `{REGENERATE}`."
        );
    }

    fn render(&self, title: &str) -> String {
        let mut out = format!(
            "# Golden encodings: {title}.\n\
             # One value a line: `name hex`; an empty value is its name alone.\n\
             # Written by `{REGENERATE}`; never edit by hand.\n\
             # A changed line is a changed wire or disk format: see docs/on-disk-layout.md.\n"
        );
        for (name, bytes) in &self.values {
            if bytes.is_empty() {
                let _ = writeln!(out, "{name}");
            } else {
                let _ = writeln!(out, "{name} {}", hex(bytes));
            }
        }
        out
    }

    /// Every difference between the values and the pinned ones (empty: none).
    fn compare(&self, pinned: &BTreeMap<String, Vec<u8>>) -> String {
        let mut report = String::new();
        for (name, now) in &self.values {
            match pinned.get(name) {
                None => {
                    let _ = writeln!(
                        report,
                        "  new      {name}: not in the golden file\n           now:    {}",
                        hex(now)
                    );
                }
                Some(was) if was != now => {
                    let at = was.iter().zip(now).take_while(|(a, b)| a == b).count();
                    let _ = writeln!(
                        report,
                        "  CHANGED  {name}: first difference at byte {at} \
                         (length {} -> {})\n           pinned: {}\n           now:    {}",
                        was.len(),
                        now.len(),
                        hex(was),
                        hex(now)
                    );
                }
                Some(_) => {}
            }
        }
        let produced: BTreeSet<&str> = self.values.iter().map(|(n, _)| n.as_str()).collect();
        for (name, was) in pinned {
            if !produced.contains(name.as_str()) {
                let _ = writeln!(
                    report,
                    "  REMOVED  {name}: pinned but no longer produced\n           pinned: {}",
                    hex(was)
                );
            }
        }
        report
    }
}

fn parse(shown: &str, text: &str) -> BTreeMap<String, Vec<u8>> {
    let mut pinned = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{shown}:{}", n + 1);
        // An empty value is its name alone.
        let (name, hex) = line.split_once(' ').unwrap_or((line, ""));
        let bytes = unhex(hex.trim()).unwrap_or_else(|| panic!("{}: bad hex", at()));
        assert!(
            pinned.insert(name.to_owned(), bytes).is_none(),
            "{}: {name} pinned twice",
            at()
        );
    }
    pinned
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

fn nibble(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}
