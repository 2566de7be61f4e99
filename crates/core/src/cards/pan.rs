//! PAN protection: a keyed hash to find a card, authenticated encryption to
//! keep the number itself. Clear PANs are never stored.
//!
//! - Lookup key: HMAC-SHA256(hash key, PAN digits). Without the key the hash
//!   cannot be brute-forced from the small space of card numbers.
//! - Stored value: `0x01 || nonce (12 bytes) || AES-256-GCM(PAN digits) || tag
//!   (16 bytes)`, a fresh random nonce each time. The leading byte is the
//!   format version, authenticated as associated data.
//!
//! Keys live only in [`PanKeys`]: zeroized on drop, never shown by `Debug`.
//! Keyed cipher and MAC states are built per call and dropped at once, so no
//! long-lived copy of the key schedule exists beside the zeroized bytes (the
//! short-lived ones are not wiped; the `zeroize` features of `aes-gcm` and
//! `hmac` would do that).

use std::fmt;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::cards::config::SecurityConfig;
use crate::cards::error::CardError;
use crate::iso8583::fields::Pan;

/// Format version of [`PanKeys::encrypt`] output.
const FORMAT_V1: u8 = 1;
/// AES-GCM nonce length (96 bits).
const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// Key length of both keys: 32 bytes.
const KEY_LEN: usize = 32;

type Nonce = aes_gcm::aead::Nonce<Aes256Gcm>;

/// The keyed hash of a PAN: what cards are found by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PanHash(pub [u8; 32]);

/// The two PAN keys. Zeroized on drop; `Debug` hides them.
pub struct PanKeys {
    hash_key: Zeroizing<[u8; KEY_LEN]>,
    encryption_key: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Display for PanHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PanHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PanHash({self})")
    }
}

impl TryFrom<&[u8]> for PanHash {
    type Error = std::array::TryFromSliceError;

    fn try_from(bytes: &[u8]) -> Result<PanHash, Self::Error> {
        Ok(PanHash(bytes.try_into()?))
    }
}

impl fmt::Debug for PanKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PanKeys")
            .field("hash_key", &crate::mask::SECRET)
            .field("encryption_key", &crate::mask::SECRET)
            .finish()
    }
}

impl PanKeys {
    /// Reads both keys as `[security]` configures them, from the process
    /// environment or inline.
    ///
    /// # Errors
    /// A [`CardError`] naming the key and what is wrong: not configured,
    /// configured twice, variable not set, not 64 hex digits, or both keys equal.
    pub fn from_config(config: &SecurityConfig) -> Result<PanKeys, CardError> {
        PanKeys::from_sources(config, |name| std::env::var(name).ok())
    }

    /// [`PanKeys::from_config`] with the environment given as a function
    /// (for tests, which cannot set process variables safely).
    ///
    /// # Errors
    /// As [`PanKeys::from_config`].
    pub fn from_sources(
        config: &SecurityConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<PanKeys, CardError> {
        let hash_key = load_key(
            "pan_hash_key",
            config.pan_hash_key_env.as_deref(),
            config.pan_hash_key.as_deref(),
            &env,
        )?;
        let encryption_key = load_key(
            "pan_encryption_key",
            config.pan_encryption_key_env.as_deref(),
            config.pan_encryption_key.as_deref(),
            &env,
        )?;
        if *hash_key == *encryption_key {
            return Err(CardError::KeysEqual);
        }
        Ok(PanKeys {
            hash_key,
            encryption_key,
        })
    }

    /// Keys from raw bytes (tests and tools).
    pub fn from_bytes(hash_key: [u8; KEY_LEN], encryption_key: [u8; KEY_LEN]) -> PanKeys {
        PanKeys {
            hash_key: Zeroizing::new(hash_key),
            encryption_key: Zeroizing::new(encryption_key),
        }
    }

    /// Whether both keys are the same bytes as `other`'s.
    pub fn same_as(&self, other: &PanKeys) -> bool {
        *self.hash_key == *other.hash_key && *self.encryption_key == *other.encryption_key
    }

    /// HMAC-SHA256 of the PAN digits under the hash key.
    pub fn hash(&self, pan: &Pan) -> PanHash {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.hash_key.as_slice())
            .expect("HMAC takes keys of any length");
        mac.update(pan.expose().as_bytes());
        PanHash(mac.finalize().into_bytes().into())
    }

    /// Encrypts the PAN digits with a fresh random nonce:
    /// `version || nonce || ciphertext || tag`.
    ///
    /// # Errors
    /// [`CardError::Encrypt`] when the system random source fails.
    pub fn encrypt(&self, pan: &Pan) -> Result<Vec<u8>, CardError> {
        let nonce = Nonce::try_generate()
            .map_err(|e| CardError::Encrypt(format!("no random nonce: {e}")))?;
        let sealed = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: pan.expose().as_bytes(),
                    aad: &[FORMAT_V1],
                },
            )
            .map_err(|_| CardError::Encrypt("AES-GCM refused the input".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts a value made by [`PanKeys::encrypt`].
    ///
    /// # Errors
    /// [`CardError::Decrypt`] when the format is unknown, the value is cut
    /// short, the key is not the one it was encrypted with, or it was altered.
    pub fn decrypt(&self, stored: &[u8]) -> Result<Pan, CardError> {
        let (&version, rest) = stored.split_first().ok_or(CardError::Decrypt {
            reason: "empty value",
        })?;
        if version != FORMAT_V1 {
            return Err(CardError::Decrypt {
                reason: "unknown format version",
            });
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CardError::Decrypt {
                reason: "value too short",
            });
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| CardError::Decrypt {
            reason: "bad nonce",
        })?;
        let clear = Zeroizing::new(
            self.cipher()
                .decrypt(
                    &nonce,
                    Payload {
                        msg: sealed,
                        aad: &[version],
                    },
                )
                .map_err(|_| CardError::Decrypt {
                    reason: "authentication failed (wrong key or altered value)",
                })?,
        );
        let digits = std::str::from_utf8(&clear).map_err(|_| CardError::Decrypt {
            reason: "not a card number",
        })?;
        Pan::new(digits).map_err(|_| CardError::Decrypt {
            reason: "not a card number",
        })
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.encryption_key))
    }
}

/// One key from its environment variable or inline value.
fn load_key(
    key: &'static str,
    env_name: Option<&str>,
    inline: Option<&str>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Zeroizing<[u8; KEY_LEN]>, CardError> {
    let (text, origin) = match (env_name, inline) {
        (Some(_), Some(_)) => return Err(CardError::KeyTwice { key }),
        (None, None) => return Err(CardError::KeyMissing { key }),
        (Some(var), None) => {
            let text = env(var).ok_or_else(|| CardError::KeyEnvUnset {
                key,
                var: var.to_string(),
            })?;
            (Zeroizing::new(text), format!("environment variable {var}"))
        }
        (None, Some(text)) => (Zeroizing::new(text.to_string()), "inline value".into()),
    };
    let invalid = |problem: String| CardError::KeyInvalid {
        key,
        origin: origin.clone(),
        problem,
    };
    let text = text.trim();
    if text.len() != 2 * KEY_LEN {
        return Err(invalid(format!(
            "must be {} hex digits (32 bytes), got {} characters",
            2 * KEY_LEN,
            text.chars().count()
        )));
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(text, bytes.as_mut_slice())
        .map_err(|_| invalid("contains a character that is not a hex digit".into()))?;
    if bytes.iter().all(|&b| b == 0) {
        return Err(invalid("is all zeros".into()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const ENC_HEX: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    fn pan() -> Pan {
        Pan::new("4761739001010010").unwrap()
    }

    fn keys() -> PanKeys {
        PanKeys::from_sources(
            &SecurityConfig {
                pan_hash_key: Some(HASH_HEX.into()),
                pan_encryption_key_env: Some("ENC".into()),
                ..SecurityConfig::default()
            },
            |name| (name == "ENC").then(|| ENC_HEX.to_string()),
        )
        .unwrap()
    }

    #[test]
    fn hash_is_stable_and_depends_on_the_key() {
        let a = keys();
        assert_eq!(a.hash(&pan()), keys().hash(&pan()));
        let other = PanKeys::from_bytes([7; 32], [8; 32]);
        assert_ne!(a.hash(&pan()), other.hash(&pan()));
        assert_ne!(
            a.hash(&pan()),
            a.hash(&Pan::new("4761739001010028").unwrap())
        );
        assert_eq!(a.hash(&pan()).to_string().len(), 64);
    }

    #[test]
    fn hash_is_hmac_sha256_of_the_digits() {
        // python3: hmac.new(bytes(range(32)), b"4761739001010010", "sha256").hexdigest()
        assert_eq!(
            keys().hash(&pan()).to_string(),
            "6e02943edbe27feda07468363fa86db0bd750d0607182fd9c858b5d3a6ddae79"
        );
    }

    #[test]
    fn encrypt_round_trips_and_never_repeats() {
        let k = keys();
        let a = k.encrypt(&pan()).unwrap();
        let b = k.encrypt(&pan()).unwrap();
        assert_ne!(a, b, "same nonce twice");
        assert_eq!(a.len(), 1 + NONCE_LEN + 16 + TAG_LEN);
        assert_eq!(a[0], FORMAT_V1);
        assert_eq!(k.decrypt(&a).unwrap(), pan());
        assert_eq!(k.decrypt(&b).unwrap(), pan());
        let digits = pan().expose().as_bytes().to_vec();
        assert!(!a.windows(digits.len()).any(|w| w == digits.as_slice()));
    }

    #[test]
    fn tampering_and_wrong_keys_fail() {
        let k = keys();
        let good = k.encrypt(&pan()).unwrap();
        for at in [0, 1, 13, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            assert!(
                matches!(k.decrypt(&bad), Err(CardError::Decrypt { .. })),
                "{at}"
            );
        }
        assert!(k.decrypt(&good[..20]).is_err());
        assert!(k.decrypt(&[]).is_err());
        let other = PanKeys::from_bytes([1; 32], [2; 32]);
        assert!(other.decrypt(&good).is_err());
    }

    #[test]
    fn key_errors_name_the_key_and_hide_the_value() {
        let cfg = |hash: Option<&str>, hash_env: Option<&str>| SecurityConfig {
            pan_hash_key: hash.map(Into::into),
            pan_hash_key_env: hash_env.map(Into::into),
            pan_encryption_key: Some(ENC_HEX.into()),
            pan_encryption_key_env: None,
        };
        let err = |c: SecurityConfig| PanKeys::from_sources(&c, |_| None).unwrap_err().to_string();
        assert!(err(cfg(None, None)).contains("security.pan_hash_key: no key configured"));
        assert!(err(cfg(Some(HASH_HEX), Some("X"))).contains("both"));
        assert!(err(cfg(None, Some("CARDHUB_K"))).contains("CARDHUB_K is not set"));
        let short = err(cfg(Some("abcd"), None));
        assert!(
            short.contains("64 hex digits") && !short.contains("abcd"),
            "{short}"
        );
        let not_hex = format!("{}zz", &HASH_HEX[..62]);
        let e = err(cfg(Some(&not_hex), None));
        assert!(
            e.contains("not a hex digit") && !e.contains(&not_hex),
            "{e}"
        );
        assert!(err(cfg(Some(ENC_HEX), None)).contains("different keys"));
        assert!(err(cfg(Some(&"0".repeat(64)), None)).contains("all zeros"));
    }

    #[test]
    fn debug_hides_the_keys() {
        let shown = format!("{:?}", keys());
        assert!(!shown.contains("0001020304") && !shown.contains("1f1e1d"));
        assert!(shown.contains(crate::mask::SECRET));
    }
}
