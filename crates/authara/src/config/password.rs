//! Password hashing cost: the argon2id parameters.

use super::declare_vars;
use super::reader::Reader;

declare_vars! {
    /// argon2id memory in KiB (the reference's value); at least 8 × the parallelism.
    HASH_MEMORY_KIB = extra("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "65536");
    /// argon2id passes.
    HASH_ITERATIONS = extra("AUTHARA_PASSWORD_HASH_ITERATIONS", "3");
    /// argon2id lanes; hashes with other parameters are upgraded at the next login.
    HASH_PARALLELISM = extra("AUTHARA_PASSWORD_HASH_PARALLELISM", "4");
    /// Requests that may wait for a hashing slot (slots = cores); past it, `503` with
    /// `Retry-After`. A waiting request holds no hash memory.
    HASH_QUEUE = extra("AUTHARA_PASSWORD_HASH_QUEUE", "64");
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashParams {
    /// The reference's parameters (time 3, 64 MiB, 4 lanes), so hashes move between the two.
    fn default() -> Self {
        Self { memory_kib: 65_536, iterations: 3, parallelism: 4 }
    }
}

/// Reads this area: the parameters and the length of the queue for hashing slots.
pub(super) fn build(r: &mut Reader<'_>) -> (HashParams, u32) {
    let params = HashParams {
        memory_kib: r.positive(&HASH_MEMORY_KIB),
        iterations: r.positive(&HASH_ITERATIONS),
        parallelism: r.positive(&HASH_PARALLELISM),
    };
    r.ensure(
        u64::from(params.memory_kib) >= 8 * u64::from(params.parallelism),
        &HASH_MEMORY_KIB,
        format!("must be at least 8 x {}", HASH_PARALLELISM.name),
    );
    (params, r.positive(&HASH_QUEUE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_defaults_are_the_default_parameters() {
        let vars = std::collections::HashMap::new();
        let mut r = Reader::new(&vars);
        assert_eq!(build(&mut r), (HashParams::default(), 64));
        assert!(r.errors.is_empty());
    }
}
