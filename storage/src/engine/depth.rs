//! A serde `Deserializer` adapter that bounds how deeply a decoded value nests.
//!
//! Serde's derived decoders recurse once per nesting level, and bincode has no
//! depth limit, so a recursive type decoded from untrusted bytes can overflow the
//! stack: openraft's `AnyError` (in the `RaftError`s a peer replies with) holds
//! `Option<Box<AnyError>>`, three bytes a level, and a peer reply may be 256 MiB.
//! Cairn's own wire enums are not recursive on decode (`sm::batched`); this is
//! the bound for the types it does not own, and for any it adds later.
//!
//! Every nested value (a struct, a field, an element, an option's content, an
//! enum's content, ...) is decoded through [`Bounded`] with one level less of
//! budget; at zero the decode fails. The adapter forwards every call unchanged
//! otherwise (bincode is not self-describing: each type hint is passed on as it
//! came), so whatever decodes within the bound decodes exactly as without it.

use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, Error as _, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};

/// A deserializer, or a seed, or a visitor, with `depth` levels left.
pub(crate) struct Bounded<T> {
    inner: T,
    depth: usize,
}

impl<T> Bounded<T> {
    pub(crate) fn new(inner: T, depth: usize) -> Self {
        Self { inner, depth }
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Bounded<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Bounded::new(d, self.depth))
    }
}

/// Forwards `deserialize_*` methods, spending one level.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* v: V) -> Result<V::Value, D::Error> {
                let depth = self.descend()?;
                self.inner.$method($($arg,)* Bounded::new(v, depth))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Bounded<D> {
    fn descend(&self) -> Result<usize, D::Error> {
        self.depth.checked_sub(1).ok_or_else(|| {
            D::Error::custom("the value nests too deeply (a corrupt or hostile encoding)")
        })
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Bounded<D> {
    type Error = D::Error;

    forward! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Forwards `visit_*` methods of scalars, unchanged.
macro_rules! visit {
    ($($method:ident($ty:ty);)*) => {
        $(
            fn $method<E: serde::de::Error>(self, value: $ty) -> Result<V::Value, E> {
                self.inner.$method(value)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Bounded<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Bounded::new(d, self.depth))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Bounded::new(d, self.depth))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Bounded::new(seq, self.depth))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Bounded::new(map, self.depth))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Bounded::new(data, self.depth))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Bounded<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(Bounded::new(seed, self.depth))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Bounded<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(Bounded::new(seed, self.depth))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(Bounded::new(seed, self.depth))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Bounded<A> {
    type Error = A::Error;
    type Variant = Bounded<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let depth = self.depth;
        let (value, variant) = self.inner.variant_seed(Bounded::new(seed, depth))?;
        Ok((value, Bounded::new(variant, depth)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Bounded<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner
            .newtype_variant_seed(Bounded::new(seed, self.depth))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(len, Bounded::new(v, self.depth))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, A::Error> {
        self.inner
            .struct_variant(fields, Bounded::new(v, self.depth))
    }
}

#[cfg(test)]
mod tests {
    use std::marker::PhantomData;

    use serde::{Deserialize, Serialize};

    use super::Bounded;

    /// A recursive type, as openraft's `AnyError` is.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Chain {
        label: u8,
        next: Option<Box<Chain>>,
    }

    fn chain(links: usize) -> Vec<u8> {
        let mut bytes = [7, 1].repeat(links);
        bytes.extend([7, 0]);
        bytes
    }

    fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], depth: usize) -> Option<T> {
        let seed = Bounded::new(PhantomData::<T>, depth);
        bincode::serde::seed_decode_from_slice(seed, bytes, bincode::config::standard())
            .ok()
            .map(|(value, _)| value)
    }

    /// The least budget that decodes `bytes` as a `T`.
    fn least_depth<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> usize {
        (0..64)
            .find(|&d| decode::<T>(bytes, d).is_some())
            .expect("decodes within 64")
    }

    #[test]
    fn depth_counts_levels_not_elements() {
        let one = least_depth::<Chain>(&chain(1));
        let two = least_depth::<Chain>(&chain(2));
        let three = least_depth::<Chain>(&chain(3));
        assert!(one > 0);
        assert!(two > one && three - two == two - one, "{one} {two} {three}");
        // Within the bound a value decodes as without it.
        let plain: (Chain, usize) =
            bincode::serde::decode_from_slice(&chain(3), bincode::config::standard())
                .expect("plain decode");
        assert_eq!(decode::<Chain>(&chain(3), three), Some(plain.0));
        // A long list is not deep: every element gets the same budget.
        let list = bincode::serde::encode_to_vec(
            vec![(1u8, "x".to_owned(), Some(2u64)); 100_000],
            bincode::config::standard(),
        )
        .expect("encode");
        assert!(decode::<Vec<(u8, String, Option<u64>)>>(&list, 8).is_some());
    }

    #[test]
    fn a_chain_deeper_than_the_budget_is_an_error_on_a_small_stack() {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                assert!(decode::<Chain>(&chain(1_000_000), 128).is_none());
                assert!(decode::<Chain>(&chain(20), 128).is_some());
            })
            .expect("spawn")
            .join()
            .expect("no overflow");
    }
}
