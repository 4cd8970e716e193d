//! Password hashing: argon2id for new hashes, and verification of KubeSphere's bcrypt hashes
//! (`$2a$`, `$2b$`, `$2y$`) so imported users keep their passwords. Hashing is CPU-bound and runs
//! on the blocking pool.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::error::CoreError;

/// Longest password accepted, in bytes: long enough for any passphrase, short enough that nobody
/// can make the server hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest password accepted for new passwords.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Why a new password breaks the policy. `Display` is the English message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes long")]
    TooLong,
    /// Only white space.
    #[error("password must not be blank")]
    Blank,
}

/// Checks a new password against the policy; the problem says what is wrong.
pub fn check_new_password(password: &str) -> Result<(), PasswordProblem> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordProblem::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordProblem::TooLong);
    }
    if password.trim().is_empty() {
        return Err(PasswordProblem::Blank);
    }
    Ok(())
}

/// At most this many password hashes run at once: one per CPU. Each argon2id hash holds 19 MiB
/// and a CPU for tens of milliseconds; running more at once only thrashes caches and memory
/// (and invites a memory-exhaustion attack), it never finishes sooner.
fn hash_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        tokio::sync::Semaphore::new(cpus)
    })
}

/// Hashes a password with argon2id (default parameters: m=19456 KiB, t=2, p=1, OWASP's minimum).
pub async fn hash_password(password: &str) -> Result<String, CoreError> {
    let password = password.to_owned();
    let _slot = hash_slots()
        .acquire()
        .await
        .map_err(|e| CoreError::Internal(format!("hash slots closed: {e}")))?;
    tokio::task::spawn_blocking(move || counting_cpu(|| hash_argon2id(password.as_bytes())))
        .await
        .map_err(|e| CoreError::Internal(format!("password hashing task failed: {e}")))?
}

/// A new argon2id PHC string of `password` with a random 16-byte salt, computed in a reused
/// working memory ([`WorkingMemories`]) as verifications are: a new hash does not leave a second
/// 19 MiB block with the allocator beside the one logins use.
fn hash_argon2id(password: &[u8]) -> Result<String, CoreError> {
    let failed =
        |e: &dyn std::fmt::Display| CoreError::Internal(format!("password hashing failed: {e}"));
    let argon2 = Argon2::default();
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    run_in_working_memory(&argon2, password, &salt, &mut out).map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Runs `argon2` over `password` and `salt` into `out`, in a working memory taken from
/// [`WORKING_MEMORIES`] and given back afterwards.
fn run_in_working_memory(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let mut memory = WORKING_MEMORIES.take(argon2.params().block_count());
    let hashed = argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..]);
    WORKING_MEMORIES.give_back(memory, std::time::Instant::now());
    hashed
}

/// Whether `hash` is a bcrypt hash (KubeSphere's; imported users keep theirs until their first
/// successful login, which replaces it with argon2id).
pub fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$", "$2x$"]
        .iter()
        .any(|p| hash.starts_with(p))
}

/// Runs `hashing` and adds the CPU time this thread spent in it to the
/// `portcullis_password_hash_cpu_seconds` histogram: what a login's password hash costs,
/// measured inside the server, which the benchmark compares with the server's whole CPU time.
fn counting_cpu<T>(hashing: impl FnOnce() -> T) -> T {
    fn thread_cpu_seconds() -> f64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    }
    let started = thread_cpu_seconds();
    let result = hashing();
    metrics::histogram!("portcullis_password_hash_cpu_seconds")
        .record(thread_cpu_seconds() - started);
    result
}

/// Verifies a password against a stored hash (argon2 PHC string or bcrypt). A malformed hash
/// verifies as false (and is logged), never as an error the caller could turn into an oracle.
pub fn verify_password_blocking(password: &str, hash: &str) -> bool {
    counting_cpu(|| verify_uncounted(password, hash))
}

fn verify_uncounted(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    if is_bcrypt(hash) {
        return match bcrypt::verify(password, hash) {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = %e, "stored bcrypt hash is malformed");
                false
            }
        };
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => verify_argon2(password.as_bytes(), &parsed).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "stored password hash is malformed");
            false
        }),
        Err(e) => {
            tracing::warn!(error = %e, "stored password hash is malformed");
            false
        }
    }
}

/// Argon2 working memories (19 MiB each at the default cost) not in use right now, kept between
/// verifications: allocating one per login instead costs thousands of page faults (the allocator
/// returns memory that large to the kernel), about a tenth of the hash itself. The most recently
/// returned one is handed out first, so back-to-back logins reuse memory that is still in the CPU's
/// cache: with one memory per blocking thread, which the runtime hands work to in turn, each login
/// started on memory the cache had evicted. argon2 writes every block before reading it, so reuse
/// needs no clearing. There are never more than the verifications that ever ran at once (at most
/// one per CPU, `hash_slots`), and [`release_idle_memory`] frees those left unused.
struct WorkingMemories {
    idle: std::sync::Mutex<Vec<(Vec<Block>, std::time::Instant)>>,
}

impl WorkingMemories {
    const fn new() -> Self {
        Self {
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The most recently returned memory, resized to `blocks`, or a new one.
    fn take(&self, blocks: usize) -> Vec<Block> {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut memory = reused.map(|(memory, _)| memory).unwrap_or_default();
        if memory.len() != blocks {
            memory.clear();
            memory.resize(blocks, Block::default());
        }
        memory
    }

    fn give_back(&self, memory: Vec<Block>, now: std::time::Instant) {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((memory, now));
    }

    /// Frees the memories unused since before `now - idle_for`; returns how many.
    fn release_idle(&self, now: std::time::Instant, idle_for: std::time::Duration) -> usize {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = idle.len();
        idle.retain(|(_, since)| now.saturating_duration_since(*since) < idle_for);
        before - idle.len()
    }
}

static WORKING_MEMORIES: WorkingMemories = WorkingMemories::new();

/// Frees the argon2 working memories no verification has used for `idle_for` (called by the
/// server's background jobs, so an idle server does not keep 19 MiB per CPU). Returns how many.
pub fn release_idle_memory(idle_for: std::time::Duration) -> usize {
    WORKING_MEMORIES.release_idle(std::time::Instant::now(), idle_for)
}

/// Recomputes an argon2 PHC hash with the stored algorithm, version, parameters and salt in
/// a reused working memory ([`WorkingMemories`]), and compares the outputs in constant time.
fn verify_argon2(password: &[u8], parsed: &PasswordHash) -> Result<bool, String> {
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err("argon2 hash without salt or output".into());
    };
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| e.to_string())?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let params = Params::try_from(parsed).map_err(|e| e.to_string())?;
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = [0u8; 64];
    let out = out
        .get_mut(..expected.len())
        .ok_or("argon2 output longer than 64 bytes")?;
    run_in_working_memory(&argon2, password, salt, out).map_err(|e| e.to_string())?;
    Ok(crate::clients::constant_time_eq_bytes(
        out,
        expected.as_bytes(),
    ))
}

/// Verifies on the blocking pool. With `hash == None` (unknown user, or a user without a
/// password) it verifies against a fixed dummy hash of the same kind, so the answer takes
/// about as long as for a real user, and returns false.
pub async fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let password = password.to_owned();
    let (hash, real) = match hash {
        Some(h) => (h.to_owned(), true),
        None => (dummy_hash().to_owned(), false),
    };
    let Ok(_slot) = hash_slots().acquire().await else {
        return false;
    };
    let ok = tokio::task::spawn_blocking(move || verify_password_blocking(&password, &hash))
        .await
        .unwrap_or(false);
    ok && real
}

/// An argon2id hash of a random value, computed once per process.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 24];
        rand::fill(&mut random);
        hash_argon2id(&random).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;

    #[tokio::test]
    async fn argon2_round_trip() {
        let h = hash_password("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&h)).await);
        assert!(!verify_password("wrong horse", Some(&h)).await);
    }

    /// The salt and output of an argon2id PHC string (`$argon2id$v=19$m=..,t=..,p=..$SALT$HASH`),
    /// parsed by hand (B64 is standard base64 without padding) so the test does not rest on the
    /// library's own parser; the library's parse is then checked to agree.
    fn phc_salt_and_output(phc: &str) -> (Vec<u8>, Vec<u8>) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let fields: Vec<&str> = phc.split('$').collect();
        assert_eq!(fields.len(), 6, "{phc}");
        assert_eq!(
            (fields[0], fields[1], fields[2]),
            ("", "argon2id", "v=19"),
            "{phc}"
        );
        assert!(fields[3].starts_with("m=19456,t=2,p=1"), "{phc}");
        let salt = b64.decode(fields[4]).unwrap();
        let output = b64.decode(fields[5]).unwrap();
        let parsed = PasswordHash::new(phc).unwrap();
        assert_eq!(parsed.salt.as_deref(), Some(salt.as_slice()));
        assert_eq!(
            parsed.hash.as_ref().map(|h| h.as_bytes()),
            Some(&output[..])
        );
        (salt, output)
    }

    /// ASVS 2.4.2: every hash gets its own random salt of at least 16 bytes (ASVS asks for 32
    /// bits), so equal passwords never give equal hashes.
    #[tokio::test]
    async fn each_hash_of_one_password_has_its_own_16_byte_salt() {
        let password = "correct horse battery";
        let a = hash_password(password).await.unwrap();
        let b = hash_password(password).await.unwrap();
        assert_ne!(a, b, "two hashes of one password are equal");
        let (salt_a, out_a) = phc_salt_and_output(&a);
        let (salt_b, out_b) = phc_salt_and_output(&b);
        assert!(salt_a.len() >= 16, "salt of {} bytes: {a}", salt_a.len());
        assert!(salt_b.len() >= 16, "salt of {} bytes: {b}", salt_b.len());
        assert_ne!(salt_a, salt_b, "the salt was reused");
        assert_ne!(out_a, out_b);
        assert!(verify_password(password, Some(&a)).await);
        assert!(verify_password(password, Some(&b)).await);
        assert!(!verify_password("correct horse batterx", Some(&a)).await);
        // The salt is really an input: A's output under B's salt does not verify.
        let mut fields: Vec<&str> = a.split('$').collect();
        fields[4] = b.split('$').nth(4).unwrap();
        let swapped = fields.join("$");
        assert_ne!(swapped, a);
        assert!(!verify_password_blocking(password, &swapped));
    }

    /// A new hash, made in a reused working memory, is exactly what the library's own hasher
    /// writes for that password and salt.
    #[test]
    fn a_new_hash_is_the_librarys_hash_of_its_salt() {
        let ours = hash_argon2id(b"correct horse battery").unwrap();
        let (salt, _) = phc_salt_and_output(&ours);
        let library = Argon2::default()
            .hash_password_with_salt(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert_eq!(ours, library);
    }

    #[test]
    fn kubesphere_default_admin_bcrypt_hash_verifies() {
        // A `$2a$10$` hash as Go's bcrypt writes it (cost 10), of "P@88w0rd".
        let h = bcrypt::hash_with_result("P@88w0rd", 10)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoA);
        assert!(h.starts_with("$2a$10$"));
        assert!(verify_password_blocking("P@88w0rd", &h));
        assert!(!verify_password_blocking("P@88w0rd!", &h));
        let y = h.replacen("$2a$", "$2y$", 1);
        assert!(verify_password_blocking("P@88w0rd", &y));
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        assert!(!verify_password("anything", None).await);
    }

    #[test]
    fn reused_memory_verifies_hashes_of_other_parameters_and_algorithms() {
        // Verified on one thread in turn: the reused memory is resized between parameter sets.
        for (algorithm, m, t) in [
            (Algorithm::Argon2id, 19456, 2),
            (Algorithm::Argon2id, 8192, 3),
            (Algorithm::Argon2i, 4096, 1),
            (Algorithm::Argon2d, 19456, 2),
        ] {
            let params = Params::new(m, t, 1, None).unwrap();
            let hasher = Argon2::new(algorithm, Version::V0x13, params);
            let h = hasher
                .hash_password_with_salt(b"P@88w0rd", b"somesaltsomesalt")
                .unwrap()
                .to_string();
            assert!(verify_password_blocking("P@88w0rd", &h), "{h}");
            assert!(!verify_password_blocking("P@88w0rd!", &h), "{h}");
        }
        // The output length comes from the stored hash.
        let params = Params::new(4096, 1, 1, Some(16)).unwrap();
        let h = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(b"pw-123456", b"saltsaltsalt")
            .unwrap()
            .to_string();
        assert!(verify_password_blocking("pw-123456", &h));
        assert!(!verify_password_blocking("pw-1234567", &h));
    }

    #[test]
    fn working_memory_is_reused_most_recent_first_and_released_when_idle() {
        let memories = WorkingMemories::new();
        let start = std::time::Instant::now();
        let first = memories.take(8);
        let second = memories.take(8);
        assert_eq!((first.len(), second.len()), (8, 8));
        let second_at = second.as_ptr();
        memories.give_back(first, start);
        memories.give_back(second, start + std::time::Duration::from_secs(5));
        // The one given back last comes out first, and another size is resized, not kept.
        let again = memories.take(8);
        assert_eq!(again.as_ptr(), second_at);
        memories.give_back(again, start + std::time::Duration::from_secs(5));
        // At 12 s with 10 s allowed: the one idle since 0 s goes, the one since 5 s stays.
        let later = start + std::time::Duration::from_secs(12);
        assert_eq!(
            memories.release_idle(later, std::time::Duration::from_secs(10)),
            1
        );
        let kept = memories.take(16);
        assert_eq!(kept.len(), 16);
        assert!(memories.idle.lock().unwrap().is_empty());
        memories.give_back(kept, later);
        assert_eq!(
            memories.release_idle(
                later + std::time::Duration::from_secs(10),
                std::time::Duration::from_secs(10)
            ),
            1
        );
    }

    #[test]
    fn malformed_hash_is_false() {
        assert!(!verify_password_blocking("x", "$2a$garbage"));
        assert!(!verify_password_blocking("x", "not a hash"));
    }

    #[test]
    fn policy() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("long enough").is_ok());
        assert!(check_new_password(&"x".repeat(2000)).is_err());
    }
}
