//! The network works on RGB shifted to be centred on zero: `value / 255 - 0.5`.

pub fn to_model_space(v: u8) -> f32 {
    v as f32 / 255.0 - 0.5
}

pub fn from_model_space(v: f32) -> u8 {
    ((v + 0.5) * 255.0).round().clamp(0.0, 255.0) as u8
}
