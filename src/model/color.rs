//! The network works on RGB shifted to be centred on zero: `value / 255 - 0.5`.

pub fn to_model_space(v: u8) -> f32 {
    v as f32 / 255.0 - 0.5
}

pub fn from_model_space(v: f32) -> u8 {
    ((v + 0.5) * 255.0).round().clamp(0.0, 255.0) as u8
}

/// BT.601 luma weights of R, G and B: the grey of JPEG, PIL and most tools.
pub const LUMA_WEIGHTS: [f32; 3] = [0.299, 0.587, 0.114];

/// BT.601 luma of an RGB triple, on the same scale as its channels.
pub fn luma(rgb: [f32; 3]) -> f32 {
    rgb.iter().zip(LUMA_WEIGHTS).map(|(v, w)| v * w).sum()
}
