//! A small key-value API on the router: `PUT`, `GET` and `DELETE` of `/kv/{key}` store,
//! read and remove the raw body; `GET /kv` lists the keys and sizes as JSON. Request
//! bodies are limited to 1 MiB, so all of these can be seen with curl:
//!
//! ```text
//! cargo run --example router -- 127.0.0.1:3000
//! curl -X PUT --data-binary 'hello' localhost:3000/kv/greeting   # 201
//! curl localhost:3000/kv/greeting                                 # hello
//! curl localhost:3000/kv                                          # {"greeting":5}
//! curl -i localhost:3000/nothing                                  # 404
//! curl -i -X POST localhost:3000/kv/greeting                      # 405, Allow: GET, HEAD, PUT, DELETE
//! head -c 2000000 /dev/zero | curl -i -X PUT --data-binary @- localhost:3000/kv/big   # 413
//! ```
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, RwLock};

use spindle::handlers::{AccessLogLayer, BodyLimitLayer, BodyTooLarge, Layers, RequestExt, Router};
use spindle::http::header::{HeaderValue, CONTENT_TYPE};
use spindle::http::StatusCode;
use spindle::server::{Request, Response, Server};

type Store = Arc<RwLock<BTreeMap<String, Vec<u8>>>>;

const LIMIT: u64 = 1 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let store: Store = Arc::default();

    let (list, get, put, delete) = (store.clone(), store.clone(), store.clone(), store);
    let router = Router::builder()
        .route("GET /kv", move |_req: Request, mut res: Response| {
            let sizes: serde_json::Map<String, serde_json::Value> = list
                .read()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.len().into()))
                .collect();
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res.send(serde_json::Value::Object(sizes).to_string().as_bytes())
                .ok();
        })
        .route("GET /kv/{key}", move |req: Request, mut res: Response| {
            let key = req.path_value("key").unwrap_or_default();
            match get.read().unwrap().get(key) {
                Some(value) => {
                    res.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    );
                    res.send(value).ok();
                }
                None => {
                    res.with_status(StatusCode::NOT_FOUND)
                        .send(b"no such key\n")
                        .ok();
                }
            }
        })
        .route("PUT /kv/{key}", move |mut req: Request, res: Response| {
            let key = req.path_value("key").unwrap_or_default().to_owned();
            let mut value = Vec::new();
            match req.read_to_end(&mut value) {
                Ok(_) => {
                    let existed = put.write().unwrap().insert(key, value).is_some();
                    let status = if existed {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::CREATED
                    };
                    res.with_status(status).send(b"").ok();
                }
                // The body-limit layer turns this response into a 413 by itself.
                Err(e) if BodyTooLarge::find(&e).is_some() => {}
                Err(e) => {
                    res.with_status(StatusCode::BAD_REQUEST)
                        .send(format!("{e}\n").as_bytes())
                        .ok();
                }
            }
        })
        .route("DELETE /kv/{key}", move |req: Request, res: Response| {
            let key = req.path_value("key").unwrap_or_default();
            let status = match delete.write().unwrap().remove(key) {
                Some(_) => StatusCode::NO_CONTENT,
                None => StatusCode::NOT_FOUND,
            };
            res.with_status(status).send(b"").ok();
        })
        .build()?;

    let app = Layers::new()
        .layer(AccessLogLayer::new())
        .layer(BodyLimitLayer::new(LIMIT))
        .service(router);
    let listening = Server::http(&addr)?.handle(app)?;
    println!("listening on http://{}", listening.local_addr());
    listening.join();
    Ok(())
}
