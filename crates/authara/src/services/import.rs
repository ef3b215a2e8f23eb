//! `authara import`: users from another system, one JSON object a line (docs/operations.md).
//!
//! The whole file is checked before anything is written: each line's fields (unknown ones are
//! refused), its password hash ([`password::inspect`]: format and cost), duplicates inside the
//! file, and emails, usernames and provider identities that already have an account. Any problem
//! (reported with its line number) means nothing is written; `--dry-run` stops there in any case.
//!
//! Then the users are written in chunks of [`CHUNK`], one transaction each, every user whole
//! (account, password, identities, roles, organizations, memberships) in one chunk: a server
//! running beside the import waits for one chunk at most, never for the whole file (SQLite has
//! one writer), and a crash leaves whole users of one batch that `--undo` removes. The batch id
//! is on every user and organization it created.
//!
//! No domain event is recorded per user: a signup's `user.created`, `organization.created` and
//! `organization.membership.created` would be 300,000 webhook deliveries for 100,000 users,
//! announcing accounts that are not new. The import writes one audit event (`users.imported`,
//! and `users.import_undone` for an undo) with the batch id and its counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;

use serde::Deserialize;
use serde_json::json;

use super::Core;
use super::audit::Actor;
use super::events::DomainEvent;
use super::password::{self, HashFormat};
use crate::config::OrgMode;
use crate::domain::{EmailAddress, OrgId, OrgRole, PlatformRole, UserId, Username, generate_username};
use crate::store::StoreError;
use crate::store::import::{ImportChunk, ImportCredential, ImportMembership, ImportOrg, ImportRole, ImportUser};

/// Users per write transaction.
pub const CHUNK: usize = 1000;
/// Longest line read; a longer one is a problem of its own.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Names per existence query.
const CHECK_CHUNK: usize = 5000;

/// One line as the file gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    email: String,
    username: Option<String>,
    email_verified: Option<bool>,
    created_at: Option<String>,
    password_hash: Option<String>,
    roles: Option<Vec<String>>,
    organizations: Option<Vec<LineOrg>>,
    identities: Option<Vec<LineIdentity>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineOrg {
    name: String,
    role: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIdentity {
    provider: String,
    subject: String,
    email: Option<String>,
}

/// A line that passed its own checks.
#[derive(Debug)]
struct Parsed {
    line: usize,
    email: String,
    username: Option<String>,
    verified: bool,
    created_at_ms: Option<i64>,
    hash: Option<(String, HashFormat)>,
    roles: Vec<PlatformRole>,
    orgs: Vec<(String, OrgRole)>,
    identities: Vec<(String, String)>,
}

/// A problem with one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What an import found and did.
#[derive(Debug, Default)]
pub struct Report {
    /// The batch id, once something was written.
    pub batch: Option<String>,
    /// Users valid (dry run, or refused file) or written.
    pub users: usize,
    /// Organizations that are (or would be) created, personal ones included.
    pub organizations: usize,
    /// Users per password hash format; `none` for those without a password.
    pub hashes: BTreeMap<&'static str, usize>,
    pub identities: usize,
    /// Every problem, in line order. Nothing is written when there is one.
    pub problems: Vec<Problem>,
    pub written: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the file: {0}")]
    Read(#[from] std::io::Error),
    /// A chunk met an email, username or identity taken after the check (a signup meanwhile).
    #[error(
        "lines {first} to {last}: an email, username or identity was taken while importing; batch {batch} holds \
         {written} user(s) written before; remove them with `authara import --undo {batch}` and import again"
    )]
    TakenMeanwhile { first: usize, last: usize, batch: String, written: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Imports and undoes batches.
#[derive(Clone)]
pub struct Importer {
    core: Core,
}

impl Importer {
    pub(crate) fn new(core: Core) -> Self {
        Self { core }
    }

    /// Checks every line of `input`; unless `dry_run` or a problem was found, writes the users
    /// as a new batch recorded with `source` (the file's name).
    pub async fn run(&self, input: impl BufRead, source: &str, dry_run: bool) -> Result<Report, ImportError> {
        let now = self.core.now_ms();
        let mode = self.core.config.org_mode;
        let mut report = Report::default();
        let mut users = Vec::new();
        for (line, text) in read_lines(input)? {
            match text.and_then(|t| parse_line(&t, mode)) {
                Ok(Some(mut p)) => {
                    p.line = line;
                    users.push(p);
                }
                Ok(None) => {}
                Err(message) => report.problems.push(Problem { line, message }),
            }
        }
        self.check_duplicates(&users, &mut report.problems).await?;
        report.problems.sort_by_key(|p| p.line);
        let refused: HashSet<usize> = report.problems.iter().map(|p| p.line).collect();
        users.retain(|u| !refused.contains(&u.line));
        report.users = users.len();
        report.identities = users.iter().map(|u| u.identities.len()).sum();
        for u in &users {
            *report.hashes.entry(u.hash.as_ref().map_or("none", |(_, f)| f.as_str())).or_default() += 1;
        }
        let team_names: HashSet<&str> = users.iter().flat_map(|u| u.orgs.iter().map(|(n, _)| n.as_str())).collect();
        let own = users.iter().filter(|u| owns_org(mode, u)).count();
        report.organizations = team_names.len() + own;
        if dry_run || !report.problems.is_empty() {
            return Ok(report);
        }
        let batch = uuid::Uuid::new_v4().to_string();
        let mut tx = self.core.store.begin().await?;
        tx.insert_import_batch(&batch, source, now).await?;
        tx.commit().await?;
        report.batch = Some(batch.clone());
        let mut names = Names::default();
        names.usernames.extend(users.iter().filter_map(|u| u.username.as_ref().map(|n| n.to_lowercase())));
        let mut written = 0;
        for part in users.chunks(CHUNK) {
            let chunk = self.chunk(part, mode, now, &mut names).await?;
            let mut tx = self.core.store.begin().await?;
            match tx.import_chunk(&batch, &chunk).await {
                Ok(()) => tx.commit().await?,
                Err(StoreError::Conflict) => {
                    let first = part.first().map_or(0, |u| u.line);
                    let last = part.last().map_or(0, |u| u.line);
                    return Err(ImportError::TakenMeanwhile { first, last, batch, written });
                }
                Err(e) => return Err(e.into()),
            }
            written += part.len();
        }
        let mut tx = self.core.store.begin().await?;
        tx.complete_import_batch(&batch, self.core.now_ms()).await?;
        let detail = json!({ "source": source, "users": report.users, "organizations": report.organizations });
        let event = DomainEvent::Imported { batch: &batch, undone: false, detail };
        self.core.record(&mut tx, &Actor::cli(), &event).await?;
        tx.commit().await?;
        report.written = true;
        Ok(report)
    }

    /// Removes every user and organization batch `id` created, in one transaction; `None` for
    /// an unknown batch.
    pub async fn undo(&self, id: &str) -> Result<Option<(u64, u64)>, StoreError> {
        let mut tx = self.core.store.begin().await?;
        let Some((users, orgs)) = tx.undo_import_batch(id, self.core.now_ms()).await? else { return Ok(None) };
        let detail = json!({ "users": users, "organizations": orgs });
        self.core.record(&mut tx, &Actor::cli(), &DomainEvent::Imported { batch: id, undone: true, detail }).await?;
        tx.commit().await?;
        Ok(Some((users, orgs)))
    }

    /// Duplicates inside the file, then what the database already holds.
    async fn check_duplicates(&self, users: &[Parsed], problems: &mut Vec<Problem>) -> Result<(), StoreError> {
        let mut emails: HashMap<&str, usize> = HashMap::new();
        let mut usernames: HashMap<String, usize> = HashMap::new();
        let mut identities: HashMap<String, usize> = HashMap::new();
        for u in users {
            if let Some(first) = emails.insert(&u.email, u.line) {
                emails.insert(&u.email, first);
                problems.push(Problem {
                    line: u.line,
                    message: format!("duplicate email {} (first on line {first})", u.email),
                });
            }
            if let Some(name) = &u.username
                && let Some(first) = usernames.insert(name.to_lowercase(), u.line)
            {
                usernames.insert(name.to_lowercase(), first);
                problems.push(Problem {
                    line: u.line,
                    message: format!("duplicate username {name} (first on line {first})"),
                });
            }
            for (provider, subject) in &u.identities {
                let key = format!("{provider}:{subject}");
                if let Some(first) = identities.insert(key.clone(), u.line) {
                    identities.insert(key, first);
                    problems.push(Problem {
                        line: u.line,
                        message: format!("duplicate {provider} identity {subject} (first on line {first})"),
                    });
                }
            }
        }
        let store = &self.core.store;
        let all: Vec<String> = emails.keys().map(|e| (*e).to_owned()).collect();
        for part in all.chunks(CHECK_CHUNK) {
            for taken in store.taken_emails(part).await? {
                let line = emails.get(taken.as_str()).copied().unwrap_or(0);
                problems.push(Problem { line, message: format!("an account with email {taken} already exists") });
            }
        }
        let explicit: Vec<(String, usize)> =
            users.iter().filter_map(|u| u.username.clone().map(|n| (n, u.line))).collect();
        let by_name: HashMap<&str, usize> = explicit.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        let names: Vec<String> = explicit.iter().map(|(n, _)| n.clone()).collect();
        for part in names.chunks(CHECK_CHUNK) {
            for taken in store.taken_usernames(part).await? {
                let line = by_name.get(taken.as_str()).copied().unwrap_or(0);
                problems.push(Problem { line, message: format!("username {taken} is taken") });
            }
        }
        let keys: Vec<String> = identities.keys().cloned().collect();
        for part in keys.chunks(CHECK_CHUNK) {
            for taken in store.taken_identities(part).await? {
                let line = identities.get(&taken).copied().unwrap_or(0);
                problems.push(Problem { line, message: format!("identity {taken} is linked to an account already") });
            }
        }
        Ok(())
    }

    /// The rows of one chunk; generated usernames are checked against the batch and the store.
    async fn chunk(
        &self,
        part: &[Parsed],
        mode: OrgMode,
        now: i64,
        names: &mut Names,
    ) -> Result<ImportChunk, StoreError> {
        let mut usernames: Vec<String> = Vec::with_capacity(part.len());
        let mut generated: Vec<usize> = Vec::new();
        for (i, u) in part.iter().enumerate() {
            match &u.username {
                Some(name) => usernames.push(name.clone()),
                None => {
                    usernames.push(names.fresh(&EmailAddress::from_stored(u.email.clone())));
                    generated.push(i);
                }
            }
        }
        // A generated name can meet one the store has: draw again, a few rounds at most.
        for _ in 0..5 {
            let candidates: Vec<String> = generated.iter().map(|&i| usernames[i].clone()).collect();
            let taken: HashSet<String> = self.core.store.taken_usernames(&candidates).await?.into_iter().collect();
            if taken.is_empty() {
                break;
            }
            for &i in &generated {
                if taken.contains(&usernames[i]) {
                    usernames[i] = names.fresh(&EmailAddress::from_stored(part[i].email.clone()));
                }
            }
        }
        let mut chunk = ImportChunk::default();
        for (u, username) in part.iter().zip(usernames) {
            let id = UserId::new();
            let created = u.created_at_ms.unwrap_or(now);
            if let Some((hash, _)) = &u.hash {
                chunk.credentials.push(ImportCredential {
                    user_id: id,
                    provider: "password".to_owned(),
                    subject: None,
                    password_hash: Some(hash.clone()),
                    created_at_ms: created,
                });
            }
            for (provider, subject) in &u.identities {
                chunk.credentials.push(ImportCredential {
                    user_id: id,
                    provider: provider.clone(),
                    subject: Some(subject.clone()),
                    password_hash: None,
                    created_at_ms: created,
                });
            }
            for role in &u.roles {
                chunk.roles.push(ImportRole { user_id: id, role: role.as_str(), created_at_ms: created });
            }
            if owns_org(mode, u) {
                let org_id = OrgId::new();
                let kind = if mode == OrgMode::Single { "team" } else { "personal" };
                chunk.orgs.push(ImportOrg {
                    id: org_id,
                    name: username.clone(),
                    kind,
                    created_by: Some(id),
                    created_at_ms: created,
                });
                chunk.memberships.push(ImportMembership {
                    org_id,
                    user_id: id,
                    role: OrgRole::Owner.as_str(),
                    created_at_ms: created,
                });
            }
            for (name, role) in &u.orgs {
                let org_id = match names.orgs.get(name) {
                    Some(org) => *org,
                    None => {
                        let org_id = OrgId::new();
                        names.orgs.insert(name.clone(), org_id);
                        chunk.orgs.push(ImportOrg {
                            id: org_id,
                            name: name.clone(),
                            kind: "team",
                            created_by: None,
                            created_at_ms: created,
                        });
                        org_id
                    }
                };
                chunk.memberships.push(ImportMembership {
                    org_id,
                    user_id: id,
                    role: role.as_str(),
                    created_at_ms: created,
                });
            }
            chunk.users.push(ImportUser {
                id,
                email: u.email.clone(),
                username,
                created_at_ms: created,
                email_verified_at_ms: u.verified.then_some(created),
            });
        }
        Ok(chunk)
    }
}

/// Names given out so far in this batch.
#[derive(Default)]
struct Names {
    /// Lowercased usernames of the batch.
    usernames: HashSet<String>,
    /// Team organizations of the batch by name: one organization per name.
    orgs: HashMap<String, OrgId>,
}

impl Names {
    /// A generated username not used in this batch yet.
    fn fresh(&mut self, email: &EmailAddress) -> String {
        loop {
            let name = generate_username(email);
            if self.usernames.insert(name.to_lowercase()) {
                return name;
            }
        }
    }
}

/// Whether the user gets an organization of their own, as a signup would: always in `personal`
/// and `multi` modes; in `single` mode only when the line names no organization to join.
fn owns_org(mode: OrgMode, u: &Parsed) -> bool {
    mode != OrgMode::Single || u.orgs.is_empty()
}

/// Lines with their numbers (from 1); a line longer than [`MAX_LINE_BYTES`] or not UTF-8 is a
/// problem of its own. Fails only when the file cannot be read.
fn read_lines(mut input: impl BufRead) -> std::io::Result<Vec<(usize, Result<String, String>)>> {
    let mut out = Vec::new();
    let mut line = 0;
    loop {
        let mut buf = Vec::new();
        let n = std::io::Read::take(&mut input, MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        line += 1;
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            // Skip the rest of the long line.
            let mut rest = Vec::new();
            input.read_until(b'\n', &mut rest)?;
            out.push((line, Err(format!("longer than {MAX_LINE_BYTES} bytes"))));
            continue;
        }
        out.push((line, String::from_utf8(buf).map_err(|_| "not UTF-8".to_owned())));
    }
}

/// One line's own checks; `Ok(None)` for a blank line.
fn parse_line(text: &str, mode: OrgMode) -> Result<Option<Parsed>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let line: Line = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let email = EmailAddress::parse(&line.email).map_err(|e| format!("email {:?}: {e}", line.email))?;
    let username = match &line.username {
        Some(u) => Some(Username::parse(u).map_err(|e| format!("username {u:?}: {e}"))?.as_str().to_owned()),
        None => None,
    };
    let created_at_ms = match &line.created_at {
        Some(t) => Some(parse_rfc3339_ms(t).ok_or_else(|| format!("created_at {t:?}: not an RFC 3339 time"))?),
        None => None,
    };
    let hash = match line.password_hash.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => Some((h.to_owned(), password::inspect(h).map_err(|e| format!("password_hash: {e}"))?)),
        None => None,
    };
    let mut roles = Vec::new();
    for r in line.roles.unwrap_or_default() {
        let role = PlatformRole::parse(&r).map_err(|_| format!("role {r:?}: expected admin, auditor or monitor"))?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    let mut orgs: Vec<(String, OrgRole)> = Vec::new();
    for o in line.organizations.unwrap_or_default() {
        let name = o.name.trim();
        if name.is_empty()
            || name.chars().count() > super::organizations::MAX_NAME_CHARS
            || crate::domain::has_hidden_characters(name)
        {
            return Err(format!(
                "organization name {:?}: 1 to 255 characters, no control or invisible characters",
                o.name
            ));
        }
        let role_text = o.role.as_deref().unwrap_or("member");
        let role = OrgRole::parse(role_text)
            .map_err(|_| format!("organization role {role_text:?}: expected owner, admin or member"))?;
        if orgs.iter().any(|(n, _)| n == name) {
            return Err(format!("organization {name:?} is listed twice"));
        }
        orgs.push((name.to_owned(), role));
    }
    match mode {
        OrgMode::Personal if !orgs.is_empty() => {
            return Err(
                "organizations need AUTHARA_ORG_MODE=single or multi (this server runs in personal mode)".to_owned()
            );
        }
        OrgMode::Single if orgs.len() > 1 => {
            return Err("single mode: a user belongs to one organization".to_owned());
        }
        _ => {}
    }
    let mut identities = Vec::new();
    for i in line.identities.unwrap_or_default() {
        let valid_provider = (1..=32).contains(&i.provider.len())
            && i.provider != "password"
            && i.provider.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid_provider {
            return Err(format!("identity provider {:?}: 1 to 32 of a-z, 0-9, _ and -, not \"password\"", i.provider));
        }
        if i.subject.is_empty() || i.subject.len() > 255 || i.subject.chars().any(char::is_control) {
            return Err(format!("identity subject {:?}: 1 to 255 characters", i.subject));
        }
        if let Some(e) = &i.email {
            EmailAddress::parse(e).map_err(|err| format!("identity email {e:?}: {err}"))?;
        }
        identities.push((i.provider, i.subject));
    }
    Ok(Some(Parsed {
        line: 0,
        email: email.as_str().to_owned(),
        username,
        verified: line.email_verified.unwrap_or(false),
        created_at_ms,
        hash,
        roles,
        orgs,
        identities,
    }))
}

/// RFC 3339 to unix milliseconds.
fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_checked_field_by_field() {
        let ok = parse_line(
            r#"{"email":" Ann@Example.com ","username":"ann_1","email_verified":true,"created_at":"2021-03-04T05:06:07.5+01:00",
               "password_hash":"$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW","roles":["admin"],
               "organizations":[{"name":"Acme","role":"admin"}],"identities":[{"provider":"google","subject":"123","email":"ann@gmail.com"}]}"#,
            OrgMode::Multi,
        )
        .unwrap()
        .unwrap();
        assert_eq!(ok.email, "ann@example.com");
        assert_eq!(ok.created_at_ms, Some(1_614_830_767_500));
        assert_eq!(ok.hash.unwrap().1, HashFormat::Bcrypt);
        assert_eq!(ok.orgs, vec![("Acme".to_owned(), OrgRole::Admin)]);
        assert!(parse_line("   ", OrgMode::Multi).unwrap().is_none());
        for (line, want) in [
            (r#"{"email":"a@b.co","nickname":"x"}"#, "unknown field `nickname`"),
            (r#"{"email":"a@b.co""#, "invalid JSON"),
            (r#"{"email":"not an email"}"#, "email"),
            (r#"{"email":"a@b.co","password_hash":"md5$abc"}"#, "unknown password hash format"),
            (r#"{"email":"a@b.co","created_at":"yesterday"}"#, "RFC 3339"),
            (r#"{"email":"a@b.co","roles":["root"]}"#, "role \"root\""),
            (r#"{"email":"a@b.co","organizations":[{"name":"A","role":"boss"}]}"#, "organization role"),
            (r#"{"email":"a@b.co","identities":[{"provider":"Google!","subject":"1"}]}"#, "identity provider"),
        ] {
            let err = parse_line(line, OrgMode::Multi).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
        let err = parse_line(r#"{"email":"a@b.co","organizations":[{"name":"A"}]}"#, OrgMode::Personal).unwrap_err();
        assert!(err.contains("personal mode"), "{err}");
        let two = r#"{"email":"a@b.co","organizations":[{"name":"A"},{"name":"B"}]}"#;
        assert!(parse_line(two, OrgMode::Single).unwrap_err().contains("one organization"));
    }

    #[test]
    fn long_and_broken_lines_are_problems_with_their_number() {
        let mut text = b"{\"email\":\"a@b.co\"}\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        text.extend(b"\n\xff\xfe\n{\"email\":\"c@d.co\"}");
        let lines = read_lines(&text[..]).unwrap();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].1.is_ok());
        assert!(lines[1].1.as_ref().unwrap_err().contains("longer than"));
        assert_eq!(lines[2].1.as_ref().unwrap_err(), "not UTF-8");
        assert_eq!(lines[3], (4, Ok("{\"email\":\"c@d.co\"}".to_owned())));
    }
}
