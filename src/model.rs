//! Our own user, attribute and rule types, shared by every layer (no serde wire names), and
//! the process-wide table of interned field names (filled with the mapped names first; a
//! full table is said once in the log).

use std::collections::BTreeMap;
use std::fmt;

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which directory a value lives in or a write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum System {
    Okta,
    Telus,
}

impl System {
    pub fn as_str(self) -> &'static str {
        match self {
            System::Okta => "okta",
            System::Telus => "telus",
        }
    }

    pub fn parse(s: &str) -> Option<System> {
        match s {
            "okta" => Some(System::Okta),
            "telus" => Some(System::Telus),
            _ => None,
        }
    }

    pub fn other(self) -> System {
        match self {
            System::Okta => System::Telus,
            System::Telus => System::Okta,
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Okta user id (`00u...`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OktaId(pub String);

/// RingCentral extension id (an int64 on the wire, kept as its decimal text).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExtId(pub String);

impl fmt::Display for OktaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ExtId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Okta lifecycle status, as far as syncing cares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OktaStatus {
    Staged,
    Provisioned,
    Active,
    Recovery,
    PasswordExpired,
    LockedOut,
    Suspended,
    Deprovisioned,
    Other(String),
}

impl OktaStatus {
    pub fn parse(s: &str) -> OktaStatus {
        match s {
            "STAGED" => OktaStatus::Staged,
            "PROVISIONED" => OktaStatus::Provisioned,
            "ACTIVE" => OktaStatus::Active,
            "RECOVERY" => OktaStatus::Recovery,
            "PASSWORD_EXPIRED" => OktaStatus::PasswordExpired,
            "LOCKED_OUT" => OktaStatus::LockedOut,
            "SUSPENDED" => OktaStatus::Suspended,
            "DEPROVISIONED" => OktaStatus::Deprovisioned,
            other => OktaStatus::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            OktaStatus::Staged => "STAGED",
            OktaStatus::Provisioned => "PROVISIONED",
            OktaStatus::Active => "ACTIVE",
            OktaStatus::Recovery => "RECOVERY",
            OktaStatus::PasswordExpired => "PASSWORD_EXPIRED",
            OktaStatus::LockedOut => "LOCKED_OUT",
            OktaStatus::Suspended => "SUSPENDED",
            OktaStatus::Deprovisioned => "DEPROVISIONED",
            OktaStatus::Other(s) => s,
        }
    }

    /// A user who can sign in (or is about to): attributes are synced for these.
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            OktaStatus::Active
                | OktaStatus::Provisioned
                | OktaStatus::Recovery
                | OktaStatus::PasswordExpired
                | OktaStatus::LockedOut
        )
    }
}

/// RingCentral extension status.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TelusStatus {
    Enabled,
    Disabled,
    NotActivated,
    Frozen,
    Unassigned,
    Other(String),
}

impl TelusStatus {
    pub fn parse(s: &str) -> TelusStatus {
        match s {
            "Enabled" => TelusStatus::Enabled,
            "Disabled" => TelusStatus::Disabled,
            "NotActivated" => TelusStatus::NotActivated,
            "Frozen" => TelusStatus::Frozen,
            "Unassigned" => TelusStatus::Unassigned,
            other => TelusStatus::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            TelusStatus::Enabled => "Enabled",
            TelusStatus::Disabled => "Disabled",
            TelusStatus::NotActivated => "NotActivated",
            TelusStatus::Frozen => "Frozen",
            TelusStatus::Unassigned => "Unassigned",
            TelusStatus::Other(s) => s,
        }
    }
}

/// Marks a profile value that is not text (an object or a list): it is kept, so that it is
/// reported instead of being taken for an empty value that would clear the other side.
pub const UNREADABLE: char = '\u{1}';

/// The longest value kept, in bytes. A longer one (a hostile or broken server, an end user
/// pasting a file into a profile field) is kept only as a short `UNREADABLE` note, so it is
/// reported as an invalid value for that user and never stored, journalled or printed whole.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Text from a server or an end user as it may reach a terminal: control characters (an
/// `ESC[...` sequence, a bell) escaped, everything else as it is.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_control() => c.escape_debug().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// A value as read from a server: itself, or past [`MAX_VALUE_BYTES`] a short note.
pub fn capped(value: String) -> String {
    if value.len() <= MAX_VALUE_BYTES {
        return value;
    }
    format!(
        "{UNREADABLE}a value of {} bytes, over the {} KiB limit",
        value.len(),
        MAX_VALUE_BYTES / 1024
    )
}

/// Attribute or field name → value for one user, in two allocations: the values end to end
/// in one string, and a sorted index of (name number, end of value). A directory of 100,000
/// users holds over a million values; a `String` per value and a name pointer per entry cost
/// three times the text itself. Names are numbered once for the whole process ([`intern`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// (name number, end of its value in `text`), sorted by name.
    index: Box<[(u16, u32)]>,
    text: Box<str>,
}

/// The most distinct field names one process numbers: far above what a directory has (Okta's
/// base and custom profile attributes, TELUS's contact and custom fields), so that past it a
/// name is refused rather than letting a hostile server grow memory. The table is static
/// data: 4,096 × 24 bytes.
const MAX_NAMES: usize = 4096;

/// The last part of the table, kept for the names the mastering table maps
/// ([`register_mapped_names`]): a server that floods the process with names fills only the
/// rest, so a mapped value is never lost to the cap (and then read as empty, which would plan
/// a clearing write). Config validation keeps a table's names well under this.
pub const RESERVED_FOR_MAPPED: usize = 512;

/// Name by number: written once per name, read without a lock.
static NAME_BY_NUMBER: [std::sync::OnceLock<&'static str>; MAX_NAMES] =
    [const { std::sync::OnceLock::new() }; MAX_NAMES];

fn name_of(number: u16) -> &'static str {
    NAME_BY_NUMBER[number as usize].get().copied().unwrap_or("")
}

fn numbers() -> std::sync::MutexGuard<'static, std::collections::HashMap<&'static str, u16>> {
    use std::sync::{Mutex, OnceLock};
    static NUMBERS: OnceLock<Mutex<std::collections::HashMap<&'static str, u16>>> = OnceLock::new();
    NUMBERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The number of a field name, numbering it on first sight while fewer than `limit` names are
/// numbered.
fn number_within(
    numbers: &mut std::collections::HashMap<&'static str, u16>,
    name: &str,
    limit: usize,
) -> Option<u16> {
    if let Some(n) = numbers.get(name) {
        return Some(*n);
    }
    let n = numbers.len();
    if n >= limit {
        return None;
    }
    // Leaked once per distinct name: the set is bounded by MAX_NAMES.
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let _ = NAME_BY_NUMBER[n].set(name);
    numbers.insert(name, n as u16);
    Some(n as u16)
}

/// The number of a field name read from a server. Past the unreserved part of the table the
/// name is ignored (its values are never stored), with one warning per process: no mapped
/// name is among them, since those are registered first.
fn number_of(name: &str) -> Option<u16> {
    let n = number_within(&mut numbers(), name, MAX_NAMES - RESERVED_FOR_MAPPED);
    if n.is_none() {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            tracing::warn!(
                max = MAX_NAMES - RESERVED_FOR_MAPPED,
                "too many distinct attribute names from the servers; unmapped names past the limit are ignored"
            )
        });
    }
    n
}

/// Numbers the names a mastering table maps, in the part of the table kept for them, so that
/// their values always fit however many other names servers send. Called before every pass;
/// returns the names that did not fit (only when a table maps more than
/// [`RESERVED_FOR_MAPPED`] names, which config validation refuses).
pub fn register_mapped_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut numbers = numbers();
    names
        .into_iter()
        .filter(|name| number_within(&mut numbers, name, MAX_NAMES).is_none())
        .map(str::to_string)
        .collect()
}

/// The one shared copy of a field name.
pub fn intern(name: &str) -> std::sync::Arc<str> {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.get(name) {
        return n.clone();
    }
    let n: Arc<str> = Arc::from(name);
    names.insert(n.clone());
    n
}

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Builds from (name number, value) pairs sorted by name with no repeated name.
    fn build<'a>(entries: impl ExactSizeIterator<Item = (u16, &'a str)> + Clone) -> Fields {
        let len: usize = entries.clone().map(|(_, v)| v.len()).sum();
        let mut text = String::with_capacity(len);
        let mut index = Vec::with_capacity(entries.len());
        for (n, v) in entries {
            text.push_str(v);
            index.push((n, text.len() as u32));
        }
        Fields {
            index: index.into_boxed_slice(),
            text: text.into_boxed_str(),
        }
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.index.binary_search_by(|(n, _)| name_of(*n).cmp(name))
    }

    fn value(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            self.index[i - 1].1 as usize
        };
        &self.text[start..self.index[i].1 as usize]
    }

    fn entries(&self) -> impl ExactSizeIterator<Item = (u16, &str)> + Clone {
        (0..self.index.len()).map(|i| (self.index[i].0, self.value(i)))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).ok().map(|i| self.value(i))
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets a value, returning the one it replaces. Rebuilds the user's fields: cheap for the
    /// dozen a user has, and rare (decoding builds them whole through `collect`).
    pub fn insert(&mut self, name: &str, value: String) -> Option<String> {
        // A refused name (past MAX_NAMES) stores nothing; the log says so once.
        let number = number_of(name)?;
        let (old, at) = match self.find(name) {
            Ok(i) => (Some(self.value(i).to_string()), i),
            Err(i) => (None, i),
        };
        let skip = usize::from(old.is_some());
        let entries: Vec<(u16, &str)> = self
            .entries()
            .take(at)
            .chain(std::iter::once((number, value.as_str())))
            .chain(self.entries().skip(at + skip))
            .collect();
        *self = Fields::build(entries.into_iter());
        old
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.find(name).ok()?;
        let old = self.value(i).to_string();
        let entries: Vec<(u16, &str)> = self
            .entries()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, e)| e)
            .collect();
        *self = Fields::build(entries.into_iter());
        Some(old)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries().map(|(n, v)| (name_of(n), v))
    }

    /// Keeps only the entries for which `keep(name, value)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        let entries: Vec<(u16, &str)> = self
            .entries()
            .filter(|(n, v)| keep(name_of(*n), v))
            .collect();
        if entries.len() != self.index.len() {
            *self = Fields::build(entries.into_iter());
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>> FromIterator<(K, String)> for Fields {
    /// A later value for the same name replaces an earlier one.
    fn from_iter<I: IntoIterator<Item = (K, String)>>(iter: I) -> Self {
        let mut items: Vec<(u16, String)> = iter
            .into_iter()
            .filter_map(|(k, v)| number_of(k.as_ref()).map(|n| (n, v)))
            .collect();
        // Stable: among equal names the later stays last, and is the one kept.
        items.sort_by(|a, b| name_of(a.0).cmp(name_of(b.0)));
        let mut kept: Vec<(u16, &str)> = Vec::with_capacity(items.len());
        for (n, v) in &items {
            match kept.last_mut() {
                Some(last) if last.0 == *n => last.1 = v,
                _ => kept.push((*n, v)),
            }
        }
        Fields::build(kept.into_iter())
    }
}

impl<K: AsRef<str>, const N: usize> From<[(K, String); N]> for Fields {
    fn from(items: [(K, String); N]) -> Self {
        items.into_iter().collect()
    }
}

impl serde::Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = <BTreeMap<String, String>>::deserialize(d)?;
        Ok(map.into_iter().collect())
    }
}

/// An Okta user as the sync sees it: profile attributes by Okta name; absent or null means `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaUser {
    pub id: OktaId,
    pub status: OktaStatus,
    /// `lastUpdated` as Okta sent it (RFC 3339), used for incremental reads.
    pub last_updated: Option<String>,
    /// `credentials.provider.type`: `OKTA` for a user whose profile source is Okta itself;
    /// `ACTIVE_DIRECTORY`, `LDAP`, `IMPORT`, `FEDERATION`, ... for one sourced elsewhere,
    /// whose profile-mastered attributes Okta may refuse to take from the API (E0000023).
    pub provider: Option<String>,
    pub profile: Fields,
}

impl OktaUser {
    pub fn email(&self) -> Option<&str> {
        self.profile.get("email")
    }
}

/// A TELUS user (an extension of type `User`), fields keyed by their TELUS path:
/// `contact.firstName`, `contact.businessAddress.city`, `extensionNumber`, `directNumber`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelusUser {
    pub id: ExtId,
    pub status: TelusStatus,
    /// The Okta user id in the record's `references` (type `CustomerDirectoryId`), which
    /// this tool sets on every user it creates or writes: it links users without the store.
    pub directory_ref: Option<OktaId>,
    pub fields: Fields,
    /// Whether the Company Directory listed this user in this read. Its direct number and
    /// custom fields come from there; the directory leaves out Frozen and Unassigned users
    /// (spec: listDirectoryEntries), and for those the two are unknown, never empty.
    pub in_directory: bool,
}

impl TelusUser {
    /// Whether this read knows the field: directory-only fields (`directNumber`,
    /// `customFields.*`) are unknown for a user the directory did not list.
    pub fn knows(&self, field: &str) -> bool {
        self.in_directory || !is_directory_field(field)
    }
    pub fn email(&self) -> Option<&str> {
        self.fields.get(TELUS_EMAIL)
    }
}

pub const TELUS_EMAIL: &str = "contact.email";
pub const TELUS_EXTENSION_NUMBER: &str = "extensionNumber";
pub const TELUS_DIRECT_NUMBER: &str = "directNumber";

/// TELUS fields read from the Company Directory rather than the extension listing.
pub fn is_directory_field(field: &str) -> bool {
    field == TELUS_DIRECT_NUMBER || field.starts_with(TELUS_CUSTOM_PREFIX)
}

/// The TELUS fields a mapping row may name, and whether this tool may write them.
pub const TELUS_FIELDS: &[(&str, bool)] = &[
    ("contact.firstName", true),
    ("contact.lastName", true),
    ("contact.email", true),
    ("contact.mobilePhone", true),
    ("contact.businessPhone", true),
    ("contact.department", true),
    ("contact.jobTitle", true),
    ("contact.company", true),
    ("contact.businessAddress.street", true),
    ("contact.businessAddress.city", true),
    ("contact.businessAddress.state", true),
    ("contact.businessAddress.zip", true),
    ("contact.businessAddress.country", true),
    (TELUS_EXTENSION_NUMBER, false),
    (TELUS_DIRECT_NUMBER, false),
];

/// Prefix of a TELUS custom user field: `customFields.<displayName>`.
pub const TELUS_CUSTOM_PREFIX: &str = "customFields.";

/// Whether a TELUS field path is known and writable; custom fields are writable (whether the
/// account has one by that name is checked against the live schema by `check-config --connect`).
pub fn telus_field_writable(path: &str) -> Option<bool> {
    if let Some(name) = path.strip_prefix(TELUS_CUSTOM_PREFIX) {
        return (!name.trim().is_empty()).then_some(true);
    }
    TELUS_FIELDS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, writable)| *writable)
}

/// The most characters a TELUS contact field takes (RingCentral's spec,
/// `ContactInfoUpdateRequest`: `maxLength` 64 for the names, job title, department and
/// company; 254 for the email), or `None` where the spec sets no bound.
pub fn telus_field_max_chars(path: &str) -> Option<usize> {
    match path {
        "contact.firstName" | "contact.lastName" | "contact.jobTitle" | "contact.department"
        | "contact.company" => Some(64),
        "contact.email" => Some(254),
        _ => None,
    }
}

/// Why a value cannot be written to a TELUS field as it is, found before TELUS is asked:
/// over the field's `maxLength`.
pub fn telus_value_refused(path: &str, value: &str) -> Option<String> {
    let max = telus_field_max_chars(path)?;
    let n = value.chars().count();
    (n > max).then(|| format!("{n} characters, over TELUS's {max} for {path}"))
}

/// How Okta masters a profile attribute (`master.type` in its profile schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OktaMaster {
    /// "Inherit from Okta": API writes are accepted for every user.
    Okta,
    /// "Inherit from profile source", Okta's default for every base and custom attribute.
    /// Writable for a user whose profile source is Okta itself (the usual case); refused
    /// (E0000023) for one sourced from a directory or app. The schema cannot tell which.
    ProfileMaster,
    /// A priority list of sources; `first` is the first entry's type (`OKTA`, `APP`, ...).
    Override {
        first: Option<String>,
        /// The whole priority list: each source's type (`APP`, `OKTA`) and, for an app, its
        /// id.
        priority: Vec<(String, Option<String>)>,
    },
}

/// One attribute of Okta's user profile schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaSchemaAttr {
    pub name: String,
    pub title: String,
    /// JSON schema type: `string`, `boolean`, `integer`, `number`, `array`.
    pub kind: String,
    pub custom: bool,
    /// `READ_WRITE`, `READ_ONLY`, `IMMUTABLE`, `WRITE_ONLY`.
    pub mutability: String,
    pub master: OktaMaster,
}

impl OktaSchemaAttr {
    /// Whether Okta accepts this tool's API writes to the attribute.
    pub fn writable(&self) -> bool {
        self.mutability == "READ_WRITE"
    }

    /// Whether Okta refuses API writes to it for every user, so a pass may leave it out in
    /// advance: only an OVERRIDE whose priority puts an app before Okta. `PROFILE_MASTER`
    /// is not: it is the default, and only users sourced elsewhere refuse it.
    pub fn refused_for_every_user(&self) -> bool {
        match &self.master {
            OktaMaster::Okta | OktaMaster::ProfileMaster => false,
            OktaMaster::Override { first, .. } => first.as_deref().is_some_and(|f| f != "OKTA"),
        }
    }

    /// The master as a short label (`OKTA`, `PROFILE_MASTER`, `OVERRIDE:APP`): what a known
    /// per-user refusal depended on.
    pub fn master_label(&self) -> String {
        match &self.master {
            OktaMaster::Okta => "OKTA".into(),
            OktaMaster::ProfileMaster => "PROFILE_MASTER".into(),
            OktaMaster::Override { first, .. } => {
                format!("OVERRIDE:{}", first.as_deref().unwrap_or(""))
            }
        }
    }
}

/// A custom user field defined in the TELUS account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelusCustomField {
    pub id: String,
    pub display_name: String,
}

/// A stored link between an Okta user and a TELUS extension.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    pub okta_id: OktaId,
    pub ext_id: ExtId,
}

/// An access token and the single-use refresh token that replaces it, with expiry times in
/// seconds since the epoch.
#[derive(Clone)]
pub struct TokenPair {
    pub access_token: secrecy::SecretString,
    pub access_expires_at: i64,
    pub refresh_token: Option<secrecy::SecretString>,
    pub refresh_expires_at: Option<i64>,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

impl TokenPair {
    /// Whether two pairs carry the same refresh token (or both none).
    pub fn same_refresh(&self, other: &TokenPair) -> bool {
        use secrecy::ExposeSecret as _;
        self.refresh_token.as_ref().map(|t| t.expose_secret())
            == other.refresh_token.as_ref().map(|t| t.expose_secret())
    }

    /// Whether two pairs carry the same access token.
    pub fn same_access(&self, other: &TokenPair) -> bool {
        use secrecy::ExposeSecret as _;
        self.access_token.expose_secret() == other.access_token.expose_secret()
    }
}

/// How a pass ended, mapped to `sync`'s exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOutcome {
    /// Everything applied, or nothing to do.
    Clean,
    /// Some users failed (duplicate email, rejected write, unsettled conflict).
    UsersFailed,
    /// Held by a safety limit: nothing was written.
    Held,
    /// A whole system failed (auth, unreachable, repeated 5xx).
    SystemFailed,
    /// Another process's pass holds the store: nothing was read or written.
    Busy,
}

impl PassOutcome {
    pub fn parse(s: &str) -> Option<PassOutcome> {
        [
            PassOutcome::Clean,
            PassOutcome::UsersFailed,
            PassOutcome::Held,
            PassOutcome::SystemFailed,
            PassOutcome::Busy,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PassOutcome::Clean => "ok",
            PassOutcome::UsersFailed => "users-failed",
            PassOutcome::Held => "held",
            PassOutcome::SystemFailed => "system-failed",
            PassOutcome::Busy => "busy",
        }
    }
}

/// Whether a pass read Okta whole or only the users changed since the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    Full,
    Incremental,
    /// A pass for the users change events named: only they are read and reconciled.
    Targeted,
}

impl PassKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PassKind::Full => "full",
            PassKind::Incremental => "incremental",
            PassKind::Targeted => "targeted",
        }
    }

    pub fn parse(s: &str) -> Option<PassKind> {
        match s {
            "full" => Some(PassKind::Full),
            "incremental" => Some(PassKind::Incremental),
            "targeted" => Some(PassKind::Targeted),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_behave_as_a_sorted_map_and_share_names() {
        let mut a: Fields = [("b", "2".to_string()), ("a", "1".to_string())].into();
        assert_eq!(a.get("a"), Some("1"));
        assert_eq!(a.insert("a", "one".into()).as_deref(), Some("1"));
        assert_eq!(a.iter().map(|(k, _)| k).collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(a.remove("b").as_deref(), Some("2"));
        assert!(!a.contains_key("b") && a.len() == 1);
        let b: Fields = [("a", "x".to_string())].into();
        assert_eq!(a.index[0].0, b.index[0].0, "names are numbered once");
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"a":"one"}"#);
        assert_eq!(serde_json::from_str::<Fields>(&json).unwrap(), a);
    }

    #[test]
    fn a_later_value_for_the_same_name_wins_when_collected() {
        let f: Fields = [
            ("b", "1".to_string()),
            ("a", "".to_string()),
            ("b", "2".to_string()),
        ]
        .into();
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![("a", ""), ("b", "2")]);
    }

    proptest::proptest! {
        /// Any sequence of inserts, removes and retains leaves the same entries as a BTreeMap.
        #[test]
        fn fields_match_a_btreemap(ops in proptest::collection::vec(
            (0u8..3, "[a-e]{1,2}", "\\PC{0,6}"), 0..40)
        ) {
            let mut f = Fields::new();
            let mut m = BTreeMap::new();
            for (op, k, v) in ops {
                match op {
                    0 => proptest::prop_assert_eq!(f.insert(&k, v.clone()), m.insert(k, v)),
                    1 => proptest::prop_assert_eq!(f.remove(&k), m.remove(&k)),
                    _ => {
                        f.retain(|name, _| name != k);
                        m.retain(|name, _| *name != k);
                    }
                }
                let got: Vec<(String, String)> =
                    f.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
                let want: Vec<(String, String)> = m.clone().into_iter().collect();
                proptest::prop_assert_eq!(got, want);
                proptest::prop_assert_eq!(f.len(), m.len());
            }
        }
    }
}

/// An Okta app instance as `init` reads it (`GET /api/v1/apps/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OktaApp {
    pub id: String,
    /// The app's catalog name (`ringcentral`, ...) and the admin's label for it.
    pub name: String,
    pub label: String,
    pub status: String,
    /// `PUSH_NEW_USERS`, `PUSH_PROFILE_UPDATES`, `PUSH_USER_DEACTIVATION`, `REACTIVATE_USERS`,
    /// `IMPORT_NEW_USERS`, `IMPORT_PROFILE_UPDATES`, `PROFILE_MASTERING`, ...
    pub features: Vec<String>,
}

/// One profile mapping (Mappings API): each target property's expression over the source,
/// and whether it is pushed on updates too (`PUSH`) or only on create (`DONT_PUSH`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfileMapping {
    pub id: String,
    pub source_id: String,
    pub target_id: String,
    /// Target property → (expression, pushed on updates).
    pub properties: std::collections::BTreeMap<String, (String, bool)>,
}

/// One of an app's assignments: the Okta user and the app's own id for it (`externalId`,
/// set at import or provisioning; for the TELUS app, the extension id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAssignment {
    pub okta_id: OktaId,
    pub external_id: Option<String>,
    pub status: String,
}
