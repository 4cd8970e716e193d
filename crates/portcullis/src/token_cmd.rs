//! `portcullis token inspect`.

use anyhow::{Result, bail};
use base64::Engine as _;
use portcullis_core::TokenType;
use serde_json::json;

use crate::cli::TokenCommand;
use crate::setup;

/// Runs a `token` subcommand. Exits non-zero when the token is not valid now.
pub async fn run(cmd: TokenCommand, wiring: &crate::providers::Wiring) -> Result<()> {
    let TokenCommand::Inspect { common, token } = cmd;
    let config = setup::load_config(&common, None, &wiring.registry(&common)?)?;
    setup::init_logging(config.portcullis.log_format);
    let header = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let Some(header) = header else {
        bail!("not a JWT: the header does not decode")
    };
    let engine = setup::open_engine(&config).await?;
    let claims = match engine.inspect(&token) {
        Ok(c) => c,
        Err(e) => bail!("{e} (checked against the configured jwtSecret)"),
    };
    let verdict = match engine.verify(&token, claims.token_type).await {
        Ok(_)
            if matches!(
                claims.token_type,
                TokenType::AccessToken | TokenType::RefreshToken
            ) =>
        {
            "valid".to_string()
        }
        Ok(_) => format!(
            "{} tokens are not accepted as credentials",
            claims.token_type.as_str()
        ),
        Err(e) => e.to_string(),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(
            &json!({ "header": header, "claims": claims, "status": verdict })
        )?
    );
    if verdict != "valid" {
        bail!("token is not valid: {verdict}");
    }
    Ok(())
}
