//! A small SVG toolkit: scales with ticks, a chart canvas with axes and marks, colours,
//! legends and colour bars. Every plot module draws through it.

pub mod chart;
pub mod colour;
pub mod escape;
pub mod legend;
pub mod scale;

pub use chart::{Anchor, Chart};
pub use colour::{series_colour, ColourScale};
pub use escape::escape;
pub use scale::{Scale, TickFormat};
