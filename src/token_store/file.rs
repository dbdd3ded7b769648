//! The embedded token store: every installed store in one file, encrypted
//! with AES-256-GCM, and every change a whole new file renamed over the old
//! one, so a crash at any point leaves either the old state or the new one.
//!
//! File layout (version 1):
//!
//! ```text
//! offset  len  field
//!      0    6  magic "BCGTS1" (the last byte is the format version)
//!      6    8  key id: SHA-256("bcgate token store key id\0" || key)[..8]
//!     14    8  length of ciphertext + tag, u64 little-endian
//!     22   12  nonce, random for every write
//!     34    n  ciphertext of the JSON `{"stores":[…]}`, then the 16-byte tag
//! ```
//!
//! The 22 header bytes are the associated data, so none of them can be
//! changed without failing authentication.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use zeroize::Zeroizing;

use super::{Installed, KEY_ID_LEN, StoreError, StoreErrorKind, TokenKey, User, is_store_hash};
use crate::secret::StoreToken;

const MAGIC: &[u8; 6] = b"BCGTS1";
const HEADER_LEN: usize = MAGIC.len() + KEY_ID_LEN + 8;
const PREFIX_LEN: usize = HEADER_LEN + NONCE_LEN;
const TAG_LEN: usize = 16;

type Entries = BTreeMap<String, Arc<Installed>>;

/// The file-backed token store. Reads are served from memory; each mutation
/// rewrites the file before it becomes visible. Share it in an `Arc`; call
/// [`put`](Self::put) and [`delete`](Self::delete) from `spawn_blocking`, as
/// they fsync. One process per file: two processes writing the same file
/// would overwrite each other's changes.
pub struct FileBackend {
    path: PathBuf,
    key: TokenKey,
    /// What the file holds. Locked only to read or swap the `Arc`, so readers
    /// never wait for a write's disk I/O.
    entries: Mutex<Arc<Entries>>,
    /// Held for a whole mutation, so writes reach the disk in the order they
    /// reach memory.
    writer: Mutex<()>,
}

impl fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileBackend")
            .field("path", &self.path)
            .field("stores", &lock(&self.entries).len())
            .finish_non_exhaustive()
    }
}

/// The data is only ever replaced whole, after the file write succeeded, so
/// a panic elsewhere while a lock was held cannot leave it half-changed.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FileBackend {
    /// Loads the store at `path`; a missing file is an empty store (its
    /// directory must exist). A leftover temporary file from a write that was
    /// interrupted is ignored here and removed by the next write.
    pub fn open(path: impl Into<PathBuf>, key: TokenKey) -> Result<Self, StoreError> {
        let path = path.into();
        if path.file_name().is_none() {
            return Err(StoreError::new(&path, StoreErrorKind::NotAFilePath));
        }
        let entries = match fs::read(&path) {
            Ok(data) => {
                warn_if_readable_by_others(&path);
                decode(&key, Zeroizing::new(data)).map_err(|k| StoreError::new(&path, k))?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !dir_of(&path).is_dir() {
                    return Err(StoreError::new(&path, StoreErrorKind::NoDirectory));
                }
                Entries::new()
            }
            Err(e) => return Err(StoreError::io(&path, "cannot read it", e)),
        };
        Ok(Self {
            path,
            key,
            entries: Mutex::new(Arc::new(entries)),
            writer: Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every installed store, ordered by hash.
    pub fn list(&self) -> Vec<Arc<Installed>> {
        let entries = lock(&self.entries).clone();
        entries.values().cloned().collect()
    }

    pub fn get(&self, hash: &str) -> Option<Arc<Installed>> {
        lock(&self.entries).get(hash).cloned()
    }

    /// Adds the store, or replaces its record (a reinstall brings a new
    /// token).
    ///
    /// On error nothing changed, with one exception: if only the final sync
    /// of the directory failed, the new file is already in place, so the
    /// change is visible (in memory and on disk) but may not survive a power
    /// loss. The same holds for [`delete`](Self::delete).
    pub fn put(&self, installed: Installed) -> Result<(), StoreError> {
        if !is_store_hash(&installed.hash) {
            return Err(StoreError::new(
                &self.path,
                StoreErrorKind::InvalidHash(installed.hash),
            ));
        }
        self.mutate(|entries| {
            entries.insert(installed.hash.clone(), Arc::new(installed));
            true
        })
        .map(|_| ())
    }

    /// Removes the store; `false` if it was not there (the file is not
    /// rewritten then). Errors as for [`put`](Self::put).
    pub fn delete(&self, hash: &str) -> Result<bool, StoreError> {
        self.mutate(|entries| entries.remove(hash).is_some())
    }

    /// Reads the file again, for a change another process made (`bcgate
    /// tokens delete`); a missing file is an empty store. On error the
    /// entries in memory stay as they were.
    pub fn reread(&self) -> Result<(), StoreError> {
        let _writing = lock(&self.writer);
        let entries = match fs::read(&self.path) {
            Ok(data) => decode(&self.key, Zeroizing::new(data))
                .map_err(|k| StoreError::new(&self.path, k))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Entries::new(),
            Err(e) => return Err(StoreError::io(&self.path, "cannot read it", e)),
        };
        *lock(&self.entries) = Arc::new(entries);
        Ok(())
    }

    /// Applies `change` to a copy of the entries; if it reports a change,
    /// writes that copy to the file and only then makes it the current state.
    fn mutate(&self, change: impl FnOnce(&mut Entries) -> bool) -> Result<bool, StoreError> {
        let _writing = lock(&self.writer);
        let mut next: Entries = (**lock(&self.entries)).clone();
        if !change(&mut next) {
            return Ok(false);
        }
        let data = encode(&self.key, &next).map_err(|k| StoreError::new(&self.path, k))?;
        let written = write_atomic(&self.path, &data)?;
        *lock(&self.entries) = Arc::new(next);
        written.sync_dir()?;
        Ok(true)
    }
}

// ---------------------------------------------------------------- file I/O

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `tokens.enc` → `tokens.enc.tmp`, in the same directory so the rename is
/// atomic (a rename cannot cross file systems).
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Proof that the new file is in place; the directory sync is the last step.
struct Renamed<'a> {
    path: &'a Path,
}

impl Renamed<'_> {
    /// Makes the rename itself durable: without it, a power loss can bring
    /// back the old directory entry.
    fn sync_dir(self) -> Result<(), StoreError> {
        let dir = dir_of(self.path);
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io(self.path, format!("cannot sync {}", dir.display()), e))
    }
}

/// Writes `data` to the temporary file (created 0600, synced) and renames it
/// over `path`. Until the rename the old file is untouched; after it the new
/// one is complete on disk.
fn write_atomic<'a>(path: &'a Path, data: &[u8]) -> Result<Renamed<'a>, StoreError> {
    let tmp = temp_path(path);
    let fail =
        |what: &str, e: io::Error| StoreError::io(path, format!("{what} {}", tmp.display()), e);
    // A previous write may have been killed after creating the temporary
    // file; its contents are of no use (the rename never happened).
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail("cannot remove the leftover", e)),
    }
    let result = (|| {
        // create_new: never write through a file or symlink someone else put there.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| fail("cannot create", e))?;
        // The umask can only take bits away; this makes it exactly 0600.
        f.set_permissions(Permissions::from_mode(0o600))
            .map_err(|e| fail("cannot set the mode of", e))?;
        f.write_all(data).map_err(|e| fail("cannot write", e))?;
        f.sync_all().map_err(|e| fail("cannot sync", e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| fail("cannot rename into place", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| Renamed { path })
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = %format!("{:o}", meta.permissions().mode() & 0o777),
            "the token store file is accessible to other users; the next write makes it 0600"
        );
    }
}

// ---------------------------------------------------------------- format

/// The plaintext form. Private mirror types, so the file format is not tied
/// to the public record type and nothing outside can serialize a token.
#[derive(Serialize)]
struct BlobOut<'a> {
    stores: Vec<EntryOut<'a>>,
}

#[derive(Serialize)]
struct EntryOut<'a> {
    hash: &'a str,
    token: TokenOut<'a>,
    scopes: &'a [String],
    user: &'a User,
    owner: &'a User,
    account_uuid: Option<&'a str>,
    installed_at: u64,
}

struct TokenOut<'a>(&'a StoreToken);

impl Serialize for TokenOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The header value shares the token's buffer; serde_json escapes it
        // straight into the (wiped) output buffer, so no other copy is made.
        let value = self.0.header_value();
        let text = std::str::from_utf8(value.as_bytes())
            .map_err(|_| <S::Error as serde::ser::Error>::custom("the token is not UTF-8"))?;
        s.serialize_str(text)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlobIn {
    stores: Vec<EntryIn>,
}

// deny_unknown_fields: an older bcgate must refuse a newer file rather than
// drop the fields it does not know on its next write.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn {
    hash: String,
    #[serde(deserialize_with = "token_in")]
    token: StoreToken,
    scopes: Vec<String>,
    user: User,
    owner: User,
    account_uuid: Option<String>,
    installed_at: u64,
}

/// `serde_json::from_slice` hands the visitor a borrow of the (wiped)
/// plaintext buffer, unless the string contains JSON escapes, which
/// BigCommerce tokens (letters and digits) never do; an escaped one passes
/// through serde_json's scratch buffer, which is not wiped.
fn token_in<'de, D: Deserializer<'de>>(d: D) -> Result<StoreToken, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = StoreToken;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a store token")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<StoreToken, E> {
            // TokenError's message never quotes the token.
            StoreToken::new(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V)
}

/// A growable buffer that wipes every allocation it leaves behind: when it
/// outgrows one, the contents move to a larger one and the old is zeroed.
/// (A plain `Vec` would free its old allocations with the plaintext in them.)
struct WipedBuf(Zeroizing<Vec<u8>>);

impl WipedBuf {
    fn with_capacity(n: usize) -> Self {
        Self(Zeroizing::new(Vec::with_capacity(n)))
    }

    fn reserve(&mut self, more: usize) {
        let need = self.0.len() + more;
        if need > self.0.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(need.max(self.0.capacity() * 2)));
            bigger.extend_from_slice(&self.0);
            self.0 = bigger;
        }
    }
}

impl Write for WipedBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.reserve(data.len());
        self.0.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn aead_key(key: &TokenKey) -> Result<LessSafeKey, StoreErrorKind> {
    // Fails only on a key of the wrong length, which a TokenKey cannot hold.
    UnboundKey::new(&AES_256_GCM, key.bytes())
        .map(LessSafeKey::new)
        .map_err(|_| StoreErrorKind::Crypto)
}

fn make_header(key: &TokenKey, body_len: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..MAGIC.len()].copy_from_slice(MAGIC);
    h[MAGIC.len()..MAGIC.len() + KEY_ID_LEN].copy_from_slice(key.id());
    h[MAGIC.len() + KEY_ID_LEN..].copy_from_slice(&body_len.to_le_bytes());
    h
}

/// The whole file for `entries`. The plaintext is encrypted where it was
/// serialized, so no buffer holds it once this returns.
fn encode(key: &TokenKey, entries: &Entries) -> Result<Zeroizing<Vec<u8>>, StoreErrorKind> {
    let blob = BlobOut {
        stores: entries
            .values()
            .map(|e| EntryOut {
                hash: &e.hash,
                token: TokenOut(&e.token),
                scopes: &e.scopes,
                user: &e.user,
                owner: &e.owner,
                account_uuid: e.account_uuid.as_deref(),
                installed_at: e.installed_at,
            })
            .collect(),
    };
    let mut buf = WipedBuf::with_capacity(PREFIX_LEN + 512 * (entries.len() + 1) + TAG_LEN);
    buf.0.resize(PREFIX_LEN, 0);
    // Writing into memory cannot fail, and every token is UTF-8 (it was made from a &str).
    serde_json::to_writer(&mut buf, &blob).map_err(|_| StoreErrorKind::Crypto)?;
    seal(key, buf)
}

/// Encrypts `buf` (`PREFIX_LEN` placeholder bytes, then the plaintext) in
/// place and fills in the header and nonce.
fn seal(key: &TokenKey, mut buf: WipedBuf) -> Result<Zeroizing<Vec<u8>>, StoreErrorKind> {
    buf.reserve(TAG_LEN);

    let body_len = (buf.0.len() - PREFIX_LEN + TAG_LEN) as u64;
    let header = make_header(key, body_len);
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| StoreErrorKind::Random)?;
    buf.0[..HEADER_LEN].copy_from_slice(&header);
    buf.0[HEADER_LEN..PREFIX_LEN].copy_from_slice(&nonce);
    let tag = aead_key(key)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header),
            &mut buf.0[PREFIX_LEN..],
        )
        // Sealing fails only for inputs beyond GCM's 64 GiB limit.
        .map_err(|_| StoreErrorKind::Crypto)?;
    buf.0.extend_from_slice(tag.as_ref());
    Ok(buf.0)
}

/// A store file around any plaintext, for tests of what decoding refuses.
#[cfg(test)]
pub(super) fn seal_plaintext(key: &TokenKey, plain: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut buf = WipedBuf::with_capacity(PREFIX_LEN + plain.len() + TAG_LEN);
    buf.0.resize(PREFIX_LEN, 0);
    buf.0.extend_from_slice(plain);
    seal(key, buf).expect("sealing works")
}

/// Checks, decrypts (in place, in the wiped buffer) and parses a file.
fn decode(key: &TokenKey, mut data: Zeroizing<Vec<u8>>) -> Result<Entries, StoreErrorKind> {
    let len = data.len() as u64;
    let magic_len = MAGIC.len().min(data.len());
    if data[..magic_len] != MAGIC[..magic_len] {
        let family = &MAGIC[..MAGIC.len() - 1];
        return Err(match data.get(..MAGIC.len()) {
            Some(m) if &m[..family.len()] == family => {
                StoreErrorKind::UnsupportedVersion(m[MAGIC.len() - 1])
            }
            _ => StoreErrorKind::NotAStore,
        });
    }
    if data.len() < HEADER_LEN {
        return Err(StoreErrorKind::Truncated {
            len,
            expected: None,
        });
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&data[..HEADER_LEN]);
    if header[MAGIC.len()..MAGIC.len() + KEY_ID_LEN] != key.id()[..] {
        return Err(StoreErrorKind::WrongKey);
    }
    let mut body_len = [0u8; 8];
    body_len.copy_from_slice(&header[MAGIC.len() + KEY_ID_LEN..]);
    let expected = (PREFIX_LEN as u64).saturating_add(u64::from_le_bytes(body_len));
    if len != expected {
        return Err(StoreErrorKind::Truncated {
            len,
            expected: Some(expected),
        });
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&data[HEADER_LEN..PREFIX_LEN]);
    // A body shorter than the tag fails here too, as Damaged.
    let plain = aead_key(key)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header),
            &mut data[PREFIX_LEN..],
        )
        .map_err(|_| StoreErrorKind::Damaged)?;
    let blob: BlobIn = serde_json::from_slice(plain).map_err(|e| StoreErrorKind::Contents {
        line: e.line(),
        column: e.column(),
    })?;
    let mut entries = Entries::new();
    for e in blob.stores {
        if !is_store_hash(&e.hash) {
            return Err(StoreErrorKind::InvalidHash(e.hash));
        }
        let record = Installed {
            hash: e.hash.clone(),
            token: e.token,
            scopes: e.scopes,
            user: e.user,
            owner: e.owner,
            account_uuid: e.account_uuid,
            installed_at: e.installed_at,
        };
        if entries.insert(e.hash.clone(), Arc::new(record)).is_some() {
            return Err(StoreErrorKind::Duplicate(e.hash));
        }
    }
    Ok(entries)
}

// ---------------------------------------------------------------- one record

/// One store as a self-contained sealed value, in exactly the file format
/// (a store file holding that one store): what the Redis backend keeps under
/// each store's key.
pub(super) fn encode_one(
    key: &TokenKey,
    installed: &Arc<Installed>,
) -> Result<Zeroizing<Vec<u8>>, StoreErrorKind> {
    let mut one = Entries::new();
    one.insert(installed.hash.clone(), installed.clone());
    encode(key, &one)
}

/// The store in a value made by [`encode_one`]. `hash` is the one the value
/// was found under: a value that holds another store (or several) is refused
/// as damaged, so values cannot be swapped between keys unnoticed.
pub(super) fn decode_one(
    key: &TokenKey,
    hash: &str,
    data: Zeroizing<Vec<u8>>,
) -> Result<Arc<Installed>, StoreErrorKind> {
    let mut entries = decode(key, data)?;
    match entries.remove(hash) {
        Some(one) if entries.is_empty() => Ok(one),
        _ => Err(StoreErrorKind::Damaged),
    }
}
