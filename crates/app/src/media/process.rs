//! Turning an uploaded file into the WebP variants Till serves. Pure and blocking (decoding a
//! 40-megapixel photo takes a while): callers run it on a blocking thread, a few at a time.
//!
//! Hostile files are stopped before they cost anything: the format is sniffed from the bytes
//! (never from a file name or header), the dimensions are read from the image header before a
//! single pixel is decoded, and the decoder runs under `image::Limits` so a file lying about
//! its size still cannot allocate more than the limit.

use std::io::Cursor;

use image::codecs::webp::WebPEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

/// Larger pictures are refused (422): a 40 MP RGBA image is already 160 MB decoded.
pub const MAX_PIXELS: u64 = 40_000_000;
/// Long side of the `thumb` variant.
pub const THUMB_PX: u32 = 256;
/// Long side of the `medium` variant.
pub const MEDIUM_PX: u32 = 800;
/// Most the decoder may allocate: a 40 MP RGBA image plus its working buffers.
const MAX_DECODER_ALLOC: u64 = 256 * 1024 * 1024;

/// Why an upload is not an image Till accepts (each a 422 naming `file`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageRejected {
    #[error("must be a JPEG, PNG or WebP image")]
    NotAnImage,
    #[error("must be at most 40 megapixels (this one is {width}×{height})")]
    TooManyPixels { width: u32, height: u32 },
    #[error("could not be decoded as an image")]
    Undecodable,
}

/// One encoded variant.
#[derive(Debug, Clone)]
pub struct Variant {
    pub width: u32,
    pub height: u32,
    pub webp: Vec<u8>,
}

/// The three variants of an upload and the key its files are named by.
#[derive(Debug, Clone)]
pub struct Processed {
    /// Hex SHA-256 of the uploaded bytes (first 32 characters): the same picture always gets
    /// the same file names, so it is stored once however often it is uploaded.
    pub file_key: String,
    pub thumb: Variant,
    pub medium: Variant,
    /// The whole picture re-encoded, which drops EXIF, GPS and every other metadata block.
    pub original: Variant,
}

/// The content key of an upload.
pub fn file_key(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..16])
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, ImageRejected> {
    let r = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| ImageRejected::NotAnImage)?;
    match r.format() {
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP) => Ok(r),
        _ => Err(ImageRejected::NotAnImage),
    }
}

/// Width and height from the header alone, refusing pictures over [`MAX_PIXELS`].
pub fn check_dimensions(bytes: &[u8]) -> Result<(u32, u32), ImageRejected> {
    let (w, h) = reader(bytes)?
        .into_dimensions()
        .map_err(|_| ImageRejected::Undecodable)?;
    if w == 0 || h == 0 {
        return Err(ImageRejected::Undecodable);
    }
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(ImageRejected::TooManyPixels {
            width: w,
            height: h,
        });
    }
    Ok((w, h))
}

/// Decodes, orients (EXIF orientation applied, then the metadata is gone), resizes and encodes.
pub fn process(bytes: &[u8]) -> Result<Processed, ImageRejected> {
    let (w, h) = check_dimensions(bytes)?;
    let mut r = reader(bytes)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(MAX_DECODER_ALLOC);
    r.limits(limits);
    let mut decoder = r.into_decoder().map_err(|_| ImageRejected::Undecodable)?;
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(|_| ImageRejected::Undecodable)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    // WebP holds 8-bit RGB(A) only; keep alpha where the picture has it.
    let img = if img.color().has_alpha() {
        DynamicImage::ImageRgba8(img.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(img.into_rgb8())
    };
    let medium = fit(&img, MEDIUM_PX);
    let thumb = fit(&medium, THUMB_PX);
    Ok(Processed {
        file_key: file_key(bytes),
        thumb: encode(&thumb)?,
        medium: encode(&medium)?,
        original: encode(&img)?,
    })
}

/// The picture scaled down (never up) so its long side is at most `max`, aspect kept.
fn fit(img: &DynamicImage, max: u32) -> DynamicImage {
    if img.width() <= max && img.height() <= max {
        img.clone()
    } else {
        img.resize(max, max, FilterType::Lanczos3)
    }
}

fn encode(img: &DynamicImage) -> Result<Variant, ImageRejected> {
    let mut webp = Vec::new();
    img.write_with_encoder(WebPEncoder::new_lossless(&mut webp))
        .map_err(|_| ImageRejected::Undecodable)?;
    Ok(Variant {
        width: img.width(),
        height: img.height(),
        webp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = ImageBuffer::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn variants_keep_the_aspect_and_never_grow() {
        let p = process(&png(1200, 600)).unwrap();
        assert_eq!((p.original.width, p.original.height), (1200, 600));
        assert_eq!((p.medium.width, p.medium.height), (800, 400));
        assert_eq!((p.thumb.width, p.thumb.height), (256, 128));
        let small = process(&png(100, 50)).unwrap();
        assert_eq!((small.thumb.width, small.thumb.height), (100, 50));
        assert!(small.thumb.webp.starts_with(b"RIFF"));
    }

    #[test]
    fn text_is_not_an_image() {
        assert_eq!(
            process(b"hello, this is not a picture").unwrap_err(),
            ImageRejected::NotAnImage
        );
    }
}
