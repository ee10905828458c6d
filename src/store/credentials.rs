//! Webhook secrets and the admin token: configured, or generated once and kept.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Storage, StoreError};
use crate::domain::Secret;

const WEBHOOK_SECRET_KEY: &str = "webhook_secret";
/// Only a hash of a generated admin token is kept: it is shown once, never stored.
const ADMIN_TOKEN_HASH_KEY: &str = "admin_token_sha256";

/// What the service checks requests against.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub webhook_secrets: Vec<Secret>,
    admin_token_sha256: [u8; 32],
}

/// A credential generated on this start, to show the operator once. It is
/// kept ([`keep_generated`]) only once the service has started, so a failed
/// first start generates it again next time instead of locking the operator out.
#[derive(Debug)]
pub struct GeneratedCredential {
    pub name: &'static str,
    pub value: Secret,
    /// The `settings` row that keeps it (the token's hash, never the token).
    key: &'static str,
    kept: String,
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl Credentials {
    /// Constant-time check of a presented admin token.
    pub fn admin_token_matches(&self, presented: &str) -> bool {
        sha256(presented).ct_eq(&self.admin_token_sha256).into()
    }

    /// Uses what is configured; otherwise what an earlier start kept;
    /// otherwise generates, and returns the new values to keep and show once.
    pub fn load_or_generate(
        store: &dyn Storage,
        configured_secrets: Option<&[Secret]>,
        configured_token: Option<&Secret>,
    ) -> Result<(Self, Vec<GeneratedCredential>), StoreError> {
        let mut generated = Vec::new();
        let webhook_secrets = match configured_secrets {
            Some(secrets) => secrets.to_vec(),
            None => match store.read_setting(WEBHOOK_SECRET_KEY)? {
                Some(stored) => vec![Secret::new(stored)],
                None => {
                    let secret = Secret::generate("whsec_");
                    generated.push(GeneratedCredential {
                        name: "CASAPAY_WEBHOOK_SECRETS",
                        value: secret.clone(),
                        key: WEBHOOK_SECRET_KEY,
                        kept: secret.expose().to_string(),
                    });
                    vec![secret]
                }
            },
        };
        let admin_token_sha256 = match configured_token {
            Some(token) => sha256(token.expose()),
            None => match store
                .read_setting(ADMIN_TOKEN_HASH_KEY)?
                .and_then(|h| decode_hash(&h))
            {
                Some(hash) => hash,
                None => {
                    let token = Secret::generate("cpr_admin_");
                    let hash = sha256(token.expose());
                    generated.push(GeneratedCredential {
                        name: "CASAPAY_ADMIN_TOKEN",
                        value: token,
                        key: ADMIN_TOKEN_HASH_KEY,
                        kept: hex::encode(hash),
                    });
                    hash
                }
            },
        };
        Ok((
            Self {
                webhook_secrets,
                admin_token_sha256,
            },
            generated,
        ))
    }
}

/// Keeps credentials generated on this start, once it has succeeded.
pub fn keep_generated(
    store: &dyn Storage,
    generated: &[GeneratedCredential],
) -> Result<(), StoreError> {
    for credential in generated {
        store.insert_setting(credential.key, &credential.kept)?;
    }
    Ok(())
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let mut hash = [0_u8; 32];
    hex::decode_to_slice(text, &mut hash).ok().map(|()| hash)
}

/// The secret a previous `serve` generated, for `trigger` to sign with.
pub fn stored_webhook_secret(store: &dyn Storage) -> Result<Option<Secret>, StoreError> {
    Ok(store.read_setting(WEBHOOK_SECRET_KEY)?.map(Secret::new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn database() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("db")).unwrap();
        super::super::migrate(&mut conn).unwrap();
        (dir, conn)
    }

    #[test]
    fn generates_once_kept_after_start_then_reuses() {
        let (_dir, conn) = database();
        let (_, unkept) = Credentials::load_or_generate(&conn, None, None).unwrap();
        let (_, again) = Credentials::load_or_generate(&conn, None, None).unwrap();
        assert_eq!(
            (unkept.len(), again.len()),
            (2, 2),
            "not kept (the start failed): generated again"
        );
        let (first, generated) = Credentials::load_or_generate(&conn, None, None).unwrap();
        keep_generated(&conn, &generated).unwrap();
        assert_eq!(generated.len(), 2);
        let token = generated
            .iter()
            .find(|g| g.name == "CASAPAY_ADMIN_TOKEN")
            .unwrap();
        assert!(first.admin_token_matches(token.value.expose()));
        let (second, again) = Credentials::load_or_generate(&conn, None, None).unwrap();
        assert!(again.is_empty(), "a second start generates nothing");
        assert_eq!(second.webhook_secrets, first.webhook_secrets);
        assert!(second.admin_token_matches(token.value.expose()));
        assert!(!second.admin_token_matches("wrong"));
        assert_eq!(
            stored_webhook_secret(&conn).unwrap(),
            Some(first.webhook_secrets[0].clone())
        );
    }

    #[test]
    fn configured_values_win_and_nothing_is_stored() {
        let (_dir, conn) = database();
        let secrets = [Secret::new("whsec_a"), Secret::new("whsec_b")];
        let token = Secret::new("tok");
        let (creds, generated) =
            Credentials::load_or_generate(&conn, Some(&secrets), Some(&token)).unwrap();
        assert!(generated.is_empty());
        assert_eq!(creds.webhook_secrets.len(), 2);
        assert!(creds.admin_token_matches("tok"));
        assert_eq!(stored_webhook_secret(&conn).unwrap(), None);
    }
}
