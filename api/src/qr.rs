//! A ticket's code drawn as a QR code (error correction M, a quiet zone of four
//! modules), in SVG or PNG.

use qrcode::{Color, EcLevel, QrCode};

use crate::ApiError;

/// Pixels per module in the PNG: about 300 pixels across for a ticket code.
const PNG_MODULE_PIXELS: usize = 6;
/// The blank border every QR reader expects, in modules.
const QUIET_ZONE: usize = 4;

fn encode(text: &str) -> Result<QrCode, ApiError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|error| {
        tracing::error!(%error, "a ticket code does not fit a QR code");
        ApiError::internal()
    })
}

/// The QR code of `text` as an SVG document.
///
/// # Errors
/// An internal error when the text is too long for a QR code (a ticket code never is).
pub fn svg(text: &str) -> Result<String, ApiError> {
    Ok(encode(text)?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// The QR code of `text` as a grayscale PNG.
///
/// # Errors
/// As [`svg`], or when the PNG cannot be encoded.
pub fn png(text: &str) -> Result<Vec<u8>, ApiError> {
    let code = encode(text)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side_modules = modules + 2 * QUIET_ZONE;
    let side = side_modules * PNG_MODULE_PIXELS;
    let mut pixels = vec![255u8; side * side];
    for (index, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (x, y) = (index % modules + QUIET_ZONE, index / modules + QUIET_ZONE);
        for row in y * PNG_MODULE_PIXELS..(y + 1) * PNG_MODULE_PIXELS {
            let start = row * side + x * PNG_MODULE_PIXELS;
            pixels[start..start + PNG_MODULE_PIXELS].fill(0);
        }
    }
    let side = u32::try_from(side).map_err(|_| ApiError::internal())?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let written = encoder.write_header().and_then(|mut writer| {
        writer
            .write_image_data(&pixels)
            .and_then(|()| writer.finish())
    });
    written.map_err(|error| {
        tracing::error!(%error, "a QR code could not be encoded as PNG");
        ApiError::internal()
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_is_a_square_grayscale_image_with_a_quiet_zone() {
        let png = png("T1.k1.AAAA.BBBB").unwrap();
        let decoder = ::png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.width, info.height);
        assert_eq!(info.color_type, ::png::ColorType::Grayscale);
        // The first rows are the quiet zone: white; the code itself has dark modules.
        let quiet = QUIET_ZONE * PNG_MODULE_PIXELS * info.width as usize;
        assert!(pixels[..quiet].iter().all(|p| *p == 255));
        assert!(pixels.contains(&0));
    }

    #[test]
    fn the_svg_is_an_svg_document() {
        let svg = svg("T1.k1.AAAA.BBBB").unwrap();
        assert!(svg.contains("<svg"), "{svg}");
    }
}
