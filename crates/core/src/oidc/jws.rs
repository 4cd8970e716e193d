//! Compact JWS (RFC 7515) for ID tokens: RS256 and ES256 only, signed and verified directly with
//! aws-lc-rs using keys parsed once.
//!
//! Verification takes the algorithm from the *key*, never from the token: a token whose header
//! names another algorithm than the key's (`none`, `HS256` with the RSA public key as HMAC
//! secret, ...) is refused before any cryptography runs.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use portcullis_config::IdTokenAlg;
use serde_json::{Value, json};

/// base64url without padding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// A private signing key, parsed once.
pub(crate) enum Signer {
    /// RSA (2048 bits or more).
    Rsa(aws_lc_rs::rsa::KeyPair),
    /// ECDSA P-256.
    Ec(EcdsaKeyPair),
}

impl Signer {
    /// Parses a PKCS#8 private key for `alg`.
    pub(crate) fn from_pkcs8(alg: IdTokenAlg, der: &[u8]) -> Result<Signer, String> {
        match alg {
            IdTokenAlg::Rs256 => aws_lc_rs::rsa::KeyPair::from_pkcs8(der)
                .map(Signer::Rsa)
                .map_err(|e| format!("not an RSA PKCS#8 private key: {e}")),
            IdTokenAlg::Es256 => {
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map(Signer::Ec)
                    .map_err(|e| format!("not a P-256 PKCS#8 private key: {e}"))
            }
        }
    }

    /// The algorithm this key signs with.
    pub(crate) fn alg(&self) -> IdTokenAlg {
        match self {
            Signer::Rsa(_) => IdTokenAlg::Rs256,
            Signer::Ec(_) => IdTokenAlg::Es256,
        }
    }

    /// The public half, as a verifier and as JWK members (without `kid`).
    pub(crate) fn public(&self) -> (Verifier, Value) {
        match self {
            Signer::Rsa(k) => {
                let public = k.public_key();
                let n = public.modulus().big_endian_without_leading_zero();
                let e = public.exponent().big_endian_without_leading_zero();
                let jwk = json!({"kty": "RSA", "n": b64(n), "e": b64(e)});
                let verifier = Verifier {
                    alg: IdTokenAlg::Rs256,
                    public: public.as_ref().to_vec(),
                };
                (verifier, jwk)
            }
            Signer::Ec(k) => {
                let point = k.public_key().as_ref();
                let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])});
                let verifier = Verifier {
                    alg: IdTokenAlg::Es256,
                    public: point.to_vec(),
                };
                (verifier, jwk)
            }
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| "RSA signing failed".to_owned())?;
                Ok(sig)
            }
            Signer::Ec(k) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "ECDSA signing failed".to_owned()),
        }
    }
}

/// Generates a fresh key: RSA 2048 or P-256. Returns the key and its PKCS#8 encoding.
pub(crate) fn generate(alg: IdTokenAlg) -> Result<(Signer, Vec<u8>), String> {
    use aws_lc_rs::encoding::AsDer;
    let der = match alg {
        IdTokenAlg::Rs256 => {
            let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| "RSA key generation failed".to_owned())?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> = key
                .as_der()
                .map_err(|_| "RSA key encoding failed".to_owned())?;
            der.as_ref().to_vec()
        }
        IdTokenAlg::Es256 => EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .map_err(|_| "EC key generation failed".to_owned())?
        .as_ref()
        .to_vec(),
    };
    Ok((Signer::from_pkcs8(alg, &der)?, der))
}

/// A public key with the one algorithm it verifies.
#[derive(Debug, Clone)]
pub(crate) struct Verifier {
    /// The only algorithm accepted with this key.
    pub(crate) alg: IdTokenAlg,
    public: Vec<u8>,
}

impl Verifier {
    /// Reads the public key of a JWK this module produced.
    pub(crate) fn from_jwk(jwk: &Value) -> Option<Verifier> {
        let field = |k: &str| jwk.get(k).and_then(Value::as_str).and_then(unb64);
        match jwk.get("kty").and_then(Value::as_str)? {
            "RSA" => {
                let (n, e) = (field("n")?, field("e")?);
                Some(Verifier {
                    alg: IdTokenAlg::Rs256,
                    public: rsa_public_der(&n, &e),
                })
            }
            "EC" if jwk.get("crv").and_then(Value::as_str) == Some("P-256") => {
                let (x, y) = (field("x")?, field("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Some(Verifier {
                    alg: IdTokenAlg::Es256,
                    public: point,
                })
            }
            _ => None,
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            IdTokenAlg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            IdTokenAlg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
        };
        UnparsedPublicKey::new(alg, &self.public)
            .verify(message, sig)
            .is_ok()
    }
}

/// DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017).
fn rsa_public_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, n: usize) {
        match n {
            0..=0x7f => out.push(n as u8),
            0x80..=0xff => out.extend_from_slice(&[0x81, n as u8]),
            _ => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
    }
    fn int(out: &mut Vec<u8>, v: &[u8]) {
        let v = match v.iter().position(|b| *b != 0) {
            Some(i) => &v[i..],
            None => &[0u8][..],
        };
        let pad = v[0] & 0x80 != 0;
        out.push(0x02);
        len(out, v.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 8);
    int(&mut body, n);
    int(&mut body, e);
    let mut out = vec![0x30];
    len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// Signs `claims` as a compact JWS with header `{"alg","typ":"JWT","kid"}`.
pub(crate) fn sign(signer: &Signer, kid: &str, claims: &Value) -> Result<String, String> {
    let header = json!({"alg": signer.alg().as_str(), "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = signer.sign(input.as_bytes())?;
    Ok(format!("{input}.{}", b64(&sig)))
}

/// A compact JWS split up, signature not yet checked.
pub(crate) struct Unverified<'a> {
    /// The header's `alg`.
    pub(crate) alg: String,
    /// The header's `kid`, if any.
    pub(crate) kid: Option<String>,
    input: &'a str,
    payload: Vec<u8>,
    sig: Vec<u8>,
}

/// Splits a compact JWS. `None` for anything that is not three base64url parts with a JSON
/// object header carrying a string `alg`.
pub(crate) fn parse(token: &str) -> Option<Unverified<'_>> {
    let (input, sig) = token.rsplit_once('.')?;
    let (header, payload) = input.split_once('.')?;
    let header: Value = serde_json::from_slice(&unb64(header)?).ok()?;
    // A JWS with "crit" extensions we do not understand must be refused (RFC 7515 §4.1.11).
    if header.get("crit").is_some() {
        return None;
    }
    Some(Unverified {
        alg: header.get("alg")?.as_str()?.to_owned(),
        kid: header.get("kid").and_then(Value::as_str).map(str::to_owned),
        input,
        payload: unb64(payload)?,
        sig: unb64(sig)?,
    })
}

impl Unverified<'_> {
    /// The payload, if the header's `alg` is the key's algorithm and the signature verifies.
    pub(crate) fn verify(self, key: &Verifier) -> Option<Vec<u8>> {
        (self.alg == key.alg.as_str() && key.verify(self.input.as_bytes(), &self.sig))
            .then_some(self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_algorithms_and_confusion_refused() {
        for alg in [IdTokenAlg::Rs256, IdTokenAlg::Es256] {
            let (signer, der) = generate(alg).unwrap();
            let (verifier, jwk) = signer.public();
            let from_jwk = Verifier::from_jwk(&jwk).unwrap();
            let token = sign(&signer, "k1", &json!({"sub": "alice"})).unwrap();
            let parsed = parse(&token).unwrap();
            assert_eq!(parsed.kid.as_deref(), Some("k1"));
            assert_eq!(parsed.alg, alg.as_str());
            let payload = parse(&token).unwrap().verify(&verifier).unwrap();
            assert_eq!(payload, br#"{"sub":"alice"}"#);
            assert!(parse(&token).unwrap().verify(&from_jwk).is_some());
            // Re-parsing the stored PKCS#8 gives the same key.
            let again = Signer::from_pkcs8(alg, &der).unwrap();
            assert_eq!(again.public().1, jwk);

            // alg none, and a header naming another algorithm, are refused.
            let (_, rest) = token.split_once('.').unwrap();
            for header in [r#"{"alg":"none"}"#, r#"{"alg":"HS256","kid":"k1"}"#] {
                let forged = format!("{}.{rest}", b64(header.as_bytes()));
                assert!(parse(&forged).unwrap().verify(&verifier).is_none());
            }
            // A tampered payload fails.
            let mut parts: Vec<&str> = token.split('.').collect();
            let other = b64(br#"{"sub":"admin"}"#);
            parts[1] = &other;
            assert!(parse(&parts.join(".")).unwrap().verify(&verifier).is_none());
        }
        assert!(parse("a.b").is_none());
        assert!(parse("not-base64!.x.y").is_none());
    }
}
