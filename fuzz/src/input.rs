//! The byte layout the structured fuzz targets read their inputs in, and the
//! writer that builds seeds in the same layout.
//!
//! Every byte string is a valid input: a field or number cut short by the end of
//! the input is padded with zeros, so the fuzzer never wastes runs on inputs a
//! target refuses to read.

/// Reads a fuzz input front to back.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The next byte; 0 once the input is used up.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next 4 bytes, big-endian.
    pub fn u32(&mut self) -> u32 {
        let mut buf = [0u8; 4];
        for b in &mut buf {
            *b = self.byte();
        }
        u32::from_be_bytes(buf)
    }

    /// The next 8 bytes, big-endian.
    pub fn u64(&mut self) -> u64 {
        let mut buf = [0u8; 8];
        for b in &mut buf {
            *b = self.byte();
        }
        u64::from_be_bytes(buf)
    }

    /// A field: a u16 big-endian length, then that many bytes (fewer if the input
    /// ends first).
    pub fn field(&mut self) -> &'a [u8] {
        let len = usize::from(u16::from_be_bytes([self.byte(), self.byte()]));
        let (field, rest) = self.data.split_at(len.min(self.data.len()));
        self.data = rest;
        field
    }

    /// Everything not read yet.
    #[must_use]
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Builds an input that [`Reader`] reads back field by field.
#[derive(Default)]
pub struct Writer(Vec<u8>);

impl Writer {
    #[must_use]
    pub fn byte(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }

    #[must_use]
    pub fn u32(mut self, n: u32) -> Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    #[must_use]
    pub fn u64(mut self, n: u64) -> Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// # Panics
    /// If `bytes` is longer than a u16 length can say (seeds are small).
    #[must_use]
    pub fn field(mut self, bytes: &[u8]) -> Self {
        let len = u16::try_from(bytes.len()).expect("a seed field fits a u16 length");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// The rest of the input, and the finished bytes.
    #[must_use]
    pub fn rest(mut self, bytes: &[u8]) -> Vec<u8> {
        self.0.extend_from_slice(bytes);
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree_and_short_input_reads_as_zeros() {
        let data = Writer::default()
            .byte(7)
            .u32(0xdead_beef)
            .u64(u64::MAX - 1)
            .field(b"abc")
            .rest(b"tail");
        let mut r = Reader::new(&data);
        assert_eq!(r.byte(), 7);
        assert_eq!(r.u32(), 0xdead_beef);
        assert_eq!(r.u64(), u64::MAX - 1);
        assert_eq!(r.field(), b"abc");
        assert_eq!(r.rest(), b"tail");

        let mut r = Reader::new(&[0, 9, b'x', b'y']);
        assert_eq!(r.field(), b"xy", "a field cut short by the end");
        assert_eq!(r.byte(), 0);
        assert_eq!(r.u64(), 0);
        assert_eq!(r.field(), b"");
        let mut r = Reader::new(&[1, 2]);
        assert_eq!(r.u32(), 0x0102_0000);
    }
}
