//! The HPACK static table (RFC 7541 Appendix A) and the dynamic table (RFC 7541 2.3.2, 4): both
//! ends of a connection keep an identical copy, so the decoder and encoder share this code.

use bytes::Bytes;
use std::collections::VecDeque;

/// Number of entries in the static table; dynamic indices start after it.
pub const STATIC_LEN: usize = 61;

/// Per-entry overhead counted in the table size (RFC 7541 4.1).
pub const ENTRY_OVERHEAD: usize = 32;

/// The static table of RFC 7541 Appendix A, index 1 first.
#[rustfmt::skip]
pub static STATIC: [(&[u8], &[u8]); STATIC_LEN] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The static entries named `name`, as (index of the first, how many): entries of one name are
/// consecutive (RFC 7541 Appendix A), and a `match` finds them without scanning all 61 (every
/// response's fields are looked up here).
pub fn static_name(name: &[u8]) -> Option<(usize, usize)> {
    Some(match name {
        b":authority" => (1, 1),
        b":method" => (2, 2),
        b":path" => (4, 2),
        b":scheme" => (6, 2),
        b":status" => (8, 7),
        b"accept-charset" => (15, 1),
        b"accept-encoding" => (16, 1),
        b"accept-language" => (17, 1),
        b"accept-ranges" => (18, 1),
        b"accept" => (19, 1),
        b"access-control-allow-origin" => (20, 1),
        b"age" => (21, 1),
        b"allow" => (22, 1),
        b"authorization" => (23, 1),
        b"cache-control" => (24, 1),
        b"content-disposition" => (25, 1),
        b"content-encoding" => (26, 1),
        b"content-language" => (27, 1),
        b"content-length" => (28, 1),
        b"content-location" => (29, 1),
        b"content-range" => (30, 1),
        b"content-type" => (31, 1),
        b"cookie" => (32, 1),
        b"date" => (33, 1),
        b"etag" => (34, 1),
        b"expect" => (35, 1),
        b"expires" => (36, 1),
        b"from" => (37, 1),
        b"host" => (38, 1),
        b"if-match" => (39, 1),
        b"if-modified-since" => (40, 1),
        b"if-none-match" => (41, 1),
        b"if-range" => (42, 1),
        b"if-unmodified-since" => (43, 1),
        b"last-modified" => (44, 1),
        b"link" => (45, 1),
        b"location" => (46, 1),
        b"max-forwards" => (47, 1),
        b"proxy-authenticate" => (48, 1),
        b"proxy-authorization" => (49, 1),
        b"range" => (50, 1),
        b"referer" => (51, 1),
        b"refresh" => (52, 1),
        b"retry-after" => (53, 1),
        b"server" => (54, 1),
        b"set-cookie" => (55, 1),
        b"strict-transport-security" => (56, 1),
        b"transfer-encoding" => (57, 1),
        b"user-agent" => (58, 1),
        b"vary" => (59, 1),
        b"via" => (60, 1),
        b"www-authenticate" => (61, 1),
        _ => return None,
    })
}

/// Size of one entry as RFC 7541 4.1 counts it.
pub fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len()
        .saturating_add(value.len())
        .saturating_add(ENTRY_OVERHEAD)
}

/// The dynamic table: newest entry first, bounded by a capacity in RFC 7541 4.1 bytes.
#[derive(Debug, Clone)]
pub struct DynamicTable {
    entries: VecDeque<(Bytes, Bytes)>,
    size: usize,
    capacity: usize,
}

impl DynamicTable {
    /// An empty table that may hold `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            capacity,
        }
    }

    /// Current size (sum of entry sizes).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Current maximum size, as last set by a dynamic table size update.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The entry at dynamic position `i` (0 = newest).
    pub fn get(&self, i: usize) -> Option<&(Bytes, Bytes)> {
        self.entries.get(i)
    }

    /// Entries newest first.
    pub fn iter(&self) -> impl Iterator<Item = &(Bytes, Bytes)> {
        self.entries.iter()
    }

    /// Changes the maximum size, evicting oldest entries until the table fits (RFC 7541 4.3).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.evict_to(capacity);
    }

    /// Adds an entry, evicting as needed; an entry larger than the capacity empties the table
    /// and is not added (RFC 7541 4.4).
    pub fn insert(&mut self, name: Bytes, value: Bytes) {
        let size = entry_size(&name, &value);
        if size > self.capacity {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.capacity - size);
        self.size += size;
        self.entries.push_front((name, value));
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_back() {
                Some((n, v)) => self.size = self.size.saturating_sub(entry_size(&n, &v)),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }
}

/// Looks up a combined (static then dynamic) 1-based index.
pub fn lookup(dynamic: &DynamicTable, index: usize) -> Option<(Bytes, Bytes)> {
    if index == 0 {
        return None;
    }
    if index <= STATIC_LEN {
        let (n, v) = STATIC.get(index - 1)?;
        return Some((Bytes::from_static(n), Bytes::from_static(v)));
    }
    dynamic.get(index - STATIC_LEN - 1).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_name_finds_every_entry_and_only_its_own() {
        for (i, (name, _)) in STATIC.iter().enumerate() {
            let (first, count) = static_name(name).expect("a static name");
            assert!((first..first + count).contains(&(i + 1)), "entry {}", i + 1);
            for (j, (other, _)) in STATIC.iter().enumerate() {
                assert_eq!(other == name, (first..first + count).contains(&(j + 1)));
            }
        }
        assert_eq!(static_name(b"apns-id"), None);
        assert_eq!(static_name(b""), None);
    }

    #[test]
    fn static_table_landmarks() {
        let t = DynamicTable::new(0);
        assert_eq!(lookup(&t, 1).unwrap().0, &b":authority"[..]);
        assert_eq!(
            lookup(&t, 8).unwrap(),
            (Bytes::from_static(b":status"), Bytes::from_static(b"200"))
        );
        assert_eq!(lookup(&t, 23).unwrap().0, &b"authorization"[..]);
        assert_eq!(lookup(&t, 31).unwrap().0, &b"content-type"[..]);
        assert_eq!(lookup(&t, 61).unwrap().0, &b"www-authenticate"[..]);
        assert!(lookup(&t, 0).is_none());
        assert!(lookup(&t, 62).is_none());
    }

    #[test]
    fn eviction_and_oversized_entry() {
        let mut t = DynamicTable::new(100);
        t.insert(Bytes::from_static(b"a"), Bytes::from_static(b"1")); // 34
        t.insert(Bytes::from_static(b"b"), Bytes::from_static(b"2")); // 68
        t.insert(Bytes::from_static(b"c"), Bytes::from_static(b"3")); // 102 > 100: evicts "a"
        assert_eq!(t.iter().count(), 2);
        assert_eq!(t.size(), 68);
        assert_eq!(t.get(0).unwrap().0, &b"c"[..]);
        assert_eq!(t.get(1).unwrap().0, &b"b"[..]);
        t.insert(Bytes::from(vec![b'x'; 80]), Bytes::new()); // 112 > 100: clears
        assert_eq!((t.iter().count(), t.size()), (0, 0));
        t.insert(Bytes::from_static(b"a"), Bytes::from_static(b"1"));
        t.set_capacity(0);
        assert_eq!((t.iter().count(), t.size()), (0, 0));
    }
}
