//! Product images: uploads become WebP variants of the right sizes with metadata stripped,
//! hostile or oversized files are refused with nothing stored, files are shared by content and
//! removed with their last image, `/media/` is served with a year-long immutable cache, and the
//! cached catalog shows image changes at once.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb, Rgba};
use serde_json::{json, Value};
use till_test_support::*;

/// A fresh, empty media directory for one test instance.
fn media_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("till-media-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn spawn(media: &Path, extra: &[(&str, &str)]) -> TestApp {
    let mut opts = Opts::new().await.set("MEDIA_DIR", media.to_str().unwrap());
    for (k, v) in extra {
        opts = opts.set(k, v);
    }
    TestApp::spawn_with(&opts).await
}

fn encoded(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = ImageBuffer::from_fn(w, h, |x, y| {
        Rgba([(x % 251) as u8, (y % 241) as u8, 90, 255])
    });
    encoded(DynamicImage::ImageRgba8(img), ImageFormat::Png)
}

const SECRET: &[u8] = b"GPS-SECRET-51.5007N";

/// A JPEG carrying an EXIF segment (APP1) with a recognisable secret in it.
fn jpeg_with_exif(w: u32, h: u32) -> Vec<u8> {
    let img = ImageBuffer::from_fn(w, h, |x, y| Rgb([(x % 200) as u8, 30, (y % 200) as u8]));
    let plain = encoded(DynamicImage::ImageRgb8(img), ImageFormat::Jpeg);
    // "Exif\0\0", a big-endian TIFF header with one empty IFD, then the secret.
    let mut payload = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\0\0\0\0\0".to_vec();
    payload.extend_from_slice(SECRET);
    let len = (payload.len() + 2) as u16;
    let mut out = plain[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&plain[2..]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    c.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    c
}

/// A 57-byte PNG whose header claims 7000×6000 pixels (42 MP): a decompression bomb's shape.
fn png_bomb_header() -> Vec<u8> {
    let mut ihdr = 7000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&6000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    out.extend(chunk(b"IEND", &[]));
    out
}

fn images_path(product_id: &str) -> String {
    format!("/api/v1/products/{product_id}/images")
}

async fn upload(c: &Client, product_id: &str, name: &str, ct: &str, bytes: &[u8]) -> Resp {
    c.request(reqwest::Method::POST, &images_path(product_id))
        .file_part("file", name, ct, bytes)
        .await
}

/// GETs a `/media/…` URL: status, Cache-Control, Content-Type and the bytes.
async fn fetch(app: &TestApp, url: &str) -> (u16, String, String, Vec<u8>) {
    let r = app
        .http
        .get(format!("{}{url}", app.url))
        .send()
        .await
        .unwrap();
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (cc, ct) = (h("cache-control"), h("content-type"));
    (
        r.status().as_u16(),
        cc,
        ct,
        r.bytes().await.unwrap().to_vec(),
    )
}

fn dims(webp: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory_with_format(webp, ImageFormat::WebP).unwrap();
    (img.width(), img.height())
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn png_and_jpeg_uploads_become_webp_variants_of_the_right_sizes_without_metadata() {
    let dir = media_dir();
    let app = spawn(&dir, &[]).await;
    let mgr = app.as_manager().await;
    let id = ProductBuilder::new("PIC-1").insert(&app).await;

    // The catalog list is cached before the upload: it must show the picture right after.
    let before = app.anon().get("/api/v1/products").await.expect_json(200);
    assert_eq!(before["items"][0]["thumb_url"], Value::Null);
    assert_eq!(before["items"][0]["images"], json!([]));

    let cases = [
        (
            "shelf.png",
            "image/png",
            png(1200, 900),
            (1200, 900),
            (800, 600),
            (256, 192),
        ),
        (
            "tin.jpg",
            "image/jpeg",
            jpeg_with_exif(500, 1000),
            (500, 1000),
            (400, 800),
            (128, 256),
        ),
    ];
    let mut uploaded = Vec::new();
    for (i, (name, ct, bytes, original, medium, thumb)) in cases.iter().enumerate() {
        let r = upload(&mgr, &id, name, ct, bytes).await;
        let img = r.clone().expect_json(201);
        assert_eq!(img["position"], i as i64, "{img}");
        assert_eq!(
            (
                img["width"].as_u64().unwrap() as u32,
                img["height"].as_u64().unwrap() as u32
            ),
            *original
        );
        assert!(r.header("location").ends_with(img["id"].as_str().unwrap()));
        for (variant, size) in [("thumb", thumb), ("medium", medium), ("original", original)] {
            let url = img["urls"][variant].as_str().unwrap();
            assert!(
                url.starts_with("/media/") && url.ends_with(".webp"),
                "{url}"
            );
            let (status, cache, ct, body) = fetch(&app, url).await;
            assert_eq!(status, 200, "{url}");
            assert_eq!(cache, "public, max-age=31536000, immutable");
            assert_eq!(ct, "image/webp");
            assert_eq!(dims(&body), *size, "{name} {variant}");
            assert!(
                !body.windows(SECRET.len()).any(|w| w == SECRET)
                    && !body.windows(4).any(|w| w == b"EXIF" || w == b"Exif"),
                "{name} {variant} still carries metadata"
            );
        }
        uploaded.push(img);
    }
    // File names are content hashes: hex, one set per picture.
    let key = |img: &Value| {
        let url = img["urls"]["original"].as_str().unwrap();
        url.trim_start_matches("/media/")
            .trim_end_matches(".webp")
            .to_owned()
    };
    assert!(
        key(&uploaded[0]).chars().all(|c| c.is_ascii_hexdigit()) && key(&uploaded[0]).len() == 32
    );
    assert_eq!(files_in(&dir).len(), 6, "{:?}", files_in(&dir));

    let p = app
        .anon()
        .get(&format!("/api/v1/products/{id}"))
        .await
        .expect_json(200);
    assert_eq!(p["images"].as_array().unwrap().len(), 2);
    assert_eq!(p["images"][0]["id"], uploaded[0]["id"]);
    assert_eq!(p["thumb_url"], uploaded[0]["urls"]["thumb"]);
    let list = app.anon().get("/api/v1/products").await.expect_json(200);
    assert_eq!(list["items"][0]["thumb_url"], uploaded[0]["urls"]["thumb"]);

    // Reordering: the JPEG first; the list shows its thumbnail.
    let img1 = uploaded[1]["id"].as_str().unwrap();
    let order = mgr
        .patch(
            &format!("{}/{img1}", images_path(&id)),
            json!({"position": 0}),
        )
        .await
        .expect_json(200);
    assert_eq!(order[0]["id"], uploaded[1]["id"]);
    assert_eq!(order[1]["position"], 1);
    let list = app.anon().get("/api/v1/products").await.expect_json(200);
    assert_eq!(list["items"][0]["thumb_url"], uploaded[1]["urls"]["thumb"]);

    // MAX_IMAGE_BYTES (10 MiB), not MAX_BODY_BYTES (1 MiB), applies: a 1.6 MB photo is fine.
    let noise = ImageBuffer::from_fn(800, 700, |x, y| {
        let v =
            (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).wrapping_mul(2_246_822_519);
        Rgb([(v >> 8) as u8, (v >> 16) as u8, (v >> 24) as u8])
    });
    let big = encoded(DynamicImage::ImageRgb8(noise), ImageFormat::Png);
    assert!(big.len() > 1_048_576, "{}", big.len());
    upload(&mgr, &id, "noise.png", "image/png", &big)
        .await
        .expect_json(201);

    // Only managers upload; a missing product is 404.
    let cashier = app.as_cashier().await;
    upload(&cashier, &id, "x.png", "image/png", &png(10, 10))
        .await
        .expect_error(403, "forbidden");
    let ghost = uuid::Uuid::now_v7().to_string();
    upload(&mgr, &ghost, "x.png", "image/png", &png(10, 10))
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        files_in(&dir).len(),
        9,
        "the noise photo added 3 files; the refused ones none"
    );
}

#[tokio::test]
async fn non_images_oversized_files_and_40_megapixel_pictures_are_refused_with_nothing_stored() {
    let dir = media_dir();
    let app = spawn(&dir, &[("MAX_IMAGE_BYTES", "200000")]).await;
    let mgr = app.as_manager().await;
    let id = ProductBuilder::new("PIC-2").insert(&app).await;

    let e = upload(
        &mgr,
        &id,
        "notes.txt",
        "text/plain",
        b"just some words, no pixels\n",
    )
    .await;
    let e = e.expect_error(422, "validation_failed");
    assert!(e["error"]["details"]["fields"]["file"][0]
        .as_str()
        .unwrap()
        .contains("JPEG, PNG or WebP"));

    // Lying about the type does not help.
    let e = upload(&mgr, &id, "fake.png", "image/png", b"GIF89a not really").await;
    e.expect_error(422, "validation_failed");

    // Header says 7000×6000: refused from the header, before any decoding.
    let bomb = png_bomb_header();
    assert!(bomb.len() < 100);
    let started = std::time::Instant::now();
    let e = upload(&mgr, &id, "bomb.png", "image/png", &bomb)
        .await
        .expect_error(422, "validation_failed");
    assert!(
        e["error"]["details"]["fields"]["file"][0]
            .as_str()
            .unwrap()
            .contains("40 megapixels"),
        "{e}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));

    // Over MAX_IMAGE_BYTES (here 200 000): 413, although MAX_BODY_BYTES (1 MiB) would allow it.
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    upload(&mgr, &id, "big.png", "image/png", &noise)
        .await
        .expect_error(413, "payload_too_large");

    // Without Content-Length (chunked), the limit still holds while the body streams in.
    let status = chunked_upload(&app, &mgr, &id, &noise).await;
    assert_eq!(status, 413);

    // A real picture under the limit still works on this instance; the refused ones left nothing.
    assert_eq!(files_in(&dir), Vec::<String>::new());
    let p = app
        .anon()
        .get(&format!("/api/v1/products/{id}"))
        .await
        .expect_json(200);
    assert_eq!(p["images"], json!([]));
    upload(&mgr, &id, "ok.png", "image/png", &png(64, 64))
        .await
        .expect_json(201);
    assert_eq!(files_in(&dir).len(), 3);
}

/// Sends a multipart upload with `Transfer-Encoding: chunked` (no Content-Length) over a raw
/// connection, 16 KiB at a time, and returns the answer's status.
async fn chunked_upload(app: &TestApp, c: &Client, id: &str, bytes: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let boundary = "till-chunked";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        images_path(id),
        c.token()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for part in body.chunks(16 * 1024) {
        let frame = [format!("{:x}\r\n", part.len()).as_bytes(), part, b"\r\n"].concat();
        if s.write_all(&frame).await.is_err() {
            break; // the server answered and closed early
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn deleting_an_image_removes_only_files_no_other_image_uses() {
    let dir = media_dir();
    let app = spawn(&dir, &[]).await;
    let mgr = app.as_manager().await;
    let a = ProductBuilder::new("PIC-A").insert(&app).await;
    let b = ProductBuilder::new("PIC-B").insert(&app).await;
    let shared = png(320, 200);

    let ia = upload(&mgr, &a, "s.png", "image/png", &shared)
        .await
        .expect_json(201);
    let ib = upload(&mgr, &b, "s.png", "image/png", &shared)
        .await
        .expect_json(201);
    let other = upload(&mgr, &a, "o.png", "image/png", &png(90, 60))
        .await
        .expect_json(201);
    assert_eq!(ia["urls"], ib["urls"], "the same picture is stored once");
    assert_eq!(files_in(&dir).len(), 6);

    let del = |p: &str, img: &Value| format!("{}/{}", images_path(p), img["id"].as_str().unwrap());
    mgr.delete(&del(&a, &ia)).await.expect_status(204);
    assert_eq!(
        files_in(&dir).len(),
        6,
        "product B still shows the shared picture"
    );
    let (status, ..) = fetch(&app, ib["urls"]["medium"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    // A's remaining image moved up to position 0 and is its thumbnail.
    let pa = mgr
        .get(&format!("/api/v1/products/{a}"))
        .await
        .expect_json(200);
    assert_eq!(
        pa["images"],
        json!([{"id": other["id"], "position": 0, "urls": other["urls"]}])
    );
    assert_eq!(pa["thumb_url"], other["urls"]["thumb"]);

    mgr.delete(&del(&b, &ib)).await.expect_status(204);
    assert_eq!(files_in(&dir).len(), 3, "{:?}", files_in(&dir));
    let (status, cache, ..) = fetch(&app, ib["urls"]["medium"].as_str().unwrap()).await;
    assert_eq!(status, 404);
    assert_ne!(
        cache, "public, max-age=31536000, immutable",
        "a 404 is not cached for a year"
    );
    let pb = app
        .anon()
        .get(&format!("/api/v1/products/{b}"))
        .await
        .expect_json(200);
    assert_eq!(
        (pb["images"].clone(), pb["thumb_url"].clone()),
        (json!([]), Value::Null)
    );

    // Deleting again, or through the wrong product: 404.
    mgr.delete(&del(&b, &ib))
        .await
        .expect_error(404, "not_found");
    mgr.delete(&del(&b, &other))
        .await
        .expect_error(404, "not_found");
    assert_eq!(audit_count(&app, "product.image_delete").await, 2);
    let events = count(
        &app,
        "SELECT count(*) FROM outbox WHERE topic = 'product.updated'",
        "",
    )
    .await;
    assert_eq!(events, 5, "3 uploads and 2 deletes each tell webhooks");
}
