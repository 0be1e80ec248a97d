"""The tensor layouts an artifact may declare, in one table: where height, width and the three
color channels sit in an image tensor of each layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LayoutName = Literal["HWC", "NHWC", "NCHW"]


@dataclass(frozen=True)
class Layout:
    rank: int
    height_axis: int
    width_axis: int
    channel_axis: int

    def shape(self, height: int, width: int, channels: int = 3) -> tuple[int, ...]:
        """The tensor shape of one (height, width) image in this layout (batch 1)."""
        shape = [1] * self.rank
        shape[self.height_axis], shape[self.width_axis] = height, width
        shape[self.channel_axis] = channels
        return tuple(shape)

    def frame_size(self, shape: tuple[int, ...] | list[int]) -> tuple[int, int]:
        """(height, width) of a tensor shape in this layout."""
        return int(shape[self.height_axis]), int(shape[self.width_axis])


LAYOUTS: dict[str, Layout] = {
    "HWC": Layout(rank=3, height_axis=0, width_axis=1, channel_axis=2),
    "NHWC": Layout(rank=4, height_axis=1, width_axis=2, channel_axis=3),
    "NCHW": Layout(rank=4, height_axis=2, width_axis=3, channel_axis=1),
}
