//! KubeSphere's `oauthOptions.signKey` (a PEM file) and `signKeyData` (base64 of a PEM): an RSA
//! private key in PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`) that, when configured,
//! signs every RS256 ID token instead of the generated keys, with KubeSphere's `kid` (the decimal
//! FNV-32a of the PEM text) so relying parties that cached ks-apiserver's JWKS keep working.

use std::sync::Arc;

use portcullis_config::Config;

use super::jws::Signer;
use crate::error::CoreError;

/// KubeSphere's `signKeyData` (base64 of a PEM) or `signKey` (a PEM file), when set.
pub(crate) fn load(config: &Config) -> Result<Option<(String, Arc<Signer>)>, CoreError> {
    use base64::Engine as _;
    let o = &config.authentication.oauth_options;
    let invalid = |m: String| CoreError::Invalid(m);
    let pem_text = match (&o.sign_key_data, &o.sign_key) {
        (Some(data), _) => base64::engine::general_purpose::STANDARD
            .decode(data.expose().trim())
            .map_err(|_| invalid("oauthOptions.signKeyData is not valid base64".into()))?,
        (None, Some(path)) => std::fs::read(path).map_err(|e| {
            invalid(format!(
                "reading oauthOptions.signKey {}: {e}",
                path.display()
            ))
        })?,
        (None, None) => return Ok(None),
    };
    let what = if o.sign_key_data.is_some() {
        "oauthOptions.signKeyData"
    } else {
        "oauthOptions.signKey"
    };
    let block =
        pem::parse(&pem_text).map_err(|_| invalid(format!("{what} does not hold a PEM block")))?;
    let key = match block.tag() {
        "RSA PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_der(block.contents()),
        "PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_pkcs8(block.contents()),
        other => {
            return Err(invalid(format!(
                "{what}: expected an RSA private key (PEM \"RSA PRIVATE KEY\" or \"PRIVATE KEY\"), found \"{other}\""
            )));
        }
    }
    .map_err(|e| invalid(format!("{what} is not a usable RSA private key: {e}")))?;
    Ok(Some((
        fnv32a(&pem_text).to_string(),
        Arc::new(Signer::Rsa(key)),
    )))
}

/// FNV-1a, 32 bits: KubeSphere's `kid` of a configured key.
fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::fnv32a;

    #[test]
    fn kubesphere_kid_is_fnv32a() {
        // FNV-1a test vectors.
        assert_eq!(fnv32a(b""), 0x811c9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9cf968);
    }
}
