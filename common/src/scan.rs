//! Finding where a text first needs escaping, 16 bytes at a time: the fake org's JSON writer
//! and the worker's COPY text writer both escape values of which most need no escape at all.

/// The length of the prefix of `bytes` that is sure to hold no byte for which `special` is
/// true: whole 16-byte blocks, each tested without an early exit so that the test compiles to
/// vector instructions. The caller handles the rest byte by byte. Byte by byte from the start,
/// escaping was a quarter of the fake org's CPU and 18% of the workers'.
#[inline]
pub fn clean_prefix(bytes: &[u8], special: impl Fn(u8) -> bool) -> usize {
    let blocks = bytes
        .chunks(16)
        .take_while(|block| !block.iter().fold(false, |any, &b| any | special(b)))
        .count();
    (blocks * 16).min(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_ends_at_the_block_holding_the_first_special_byte() {
        let quote = |b| b == b'"';
        let mut text = vec![b'a'; 40];
        assert_eq!(
            clean_prefix(&text, quote),
            40,
            "all clean, partial last block"
        );
        text[37] = b'"';
        assert_eq!(clean_prefix(&text, quote), 32);
        text[16] = b'"';
        assert_eq!(clean_prefix(&text, quote), 16);
        text[0] = b'"';
        assert_eq!(clean_prefix(&text, quote), 0);
        assert_eq!(clean_prefix(b"", quote), 0);
    }
}
