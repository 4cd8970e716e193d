//! A bare axum server: `POST /` and `GET /` answer a constant JSON body. Prints its address.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let app = Router::new().route("/", get(constant).post(constant));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, app).await
}

async fn constant() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": {"authenticated": true}}))
}
