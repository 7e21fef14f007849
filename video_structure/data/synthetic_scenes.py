"""A development suite of synthetic video sets with ground-truth object positions (numpy only).

The CPU recipe was tuned on one data set (Basketball: six coloured discs on a tan floor). The
sets here differ from it, and from each other, in the ways real footage does: textured and
moving backgrounds, camera shake, 2 to 8 objects of different shapes, sizes and colours (some
alike), occlusions, objects that leave the frame and come back, changing light, greyscale. They
answer one question: does a recipe discover every object of data it was never tuned on?
docs/dev_suite.md describes each set.

A set is a `SceneSetSpec`. Object m has the same shape, size and colour in every sequence of a
set (as Basketball's players do), so a linear regression from keypoints to object positions
(the paper's tracking protocol) is meaningful; only positions, velocities, the camera, the
background's phase and the light vary between sequences, drawn from a seeded numpy Generator.

Coordinates (the project's keypoint convention, the folder reader's `true_object_pos`, the
Basketball renderer's): (x, y) in [-1, 1] of the frame, x right, y UP. Pixel centres lie on
`linspace(-1, 1, W)` for x and `linspace(1, -1, H)` for y:

    column = (x + 1) * (W - 1) / 2,    row = (1 - y) * (H - 1) / 2,

so at 64x64 one coordinate unit is 31.5 px. An object is drawn centred exactly at that
(sub-pixel) point, and its pixel centroid is there: every shape is symmetric about its centre
(the triangle about its centroid). The true positions are in frame coordinates, so they include
the camera shake; they leave [-1, 1] when an object leaves the frame. Sizes, speeds, shake and
drift are given in pixels of a 64x64 frame and scale with `image_size`.

Rendering a sequence (`render_sequence` = `plan_sequence` then `render_plan`):
  * motion (in 64x64 pixels): "bounce" keeps each object's velocity (speed_px x U(0.8, 1.2),
    random direction) and reflects it at the walls; "momentum" is a random walk with
    momentum, v <- 0.9 v + sqrt(1 - 0.9^2) e with e ~ N(0, speed_px^2 / 2) per axis (RMS speed
    speed_px), reflected at the walls. The walls: with leave_frame_px = 0 an object stays whole
    inside the frame even when shaken; otherwise its centre may go leave_frame_px beyond the
    point where it is wholly out of view. Without occlusions, objects bounce off each other as
    equal-mass discs of diameter size_px (so they rarely overlap); with them, they pass over
    each other. Initial positions are uniform over the frame (every object visible at t = 0).
  * drawing: objects are drawn in index order (object 0 at the back, the last in front), each
    anti-aliased with coverage clip(0.5 - signed distance in px, 0, 1) over the background.
  * background: "flat" (background_colour), or a texture mixing background_colour and
    texture_colour: "noise" (white noise low-passed by a Gaussian of standard deviation
    texture_scale_px / 2, periodic over 128 px, a new pattern per sequence), "stripes"
    (sinusoidal, period texture_scale_px, random angle and phase per sequence) or "checker"
    (period texture_scale_px, random phase). It drifts by background_drift_px per frame in a
    random direction per sequence.
  * camera: the whole frame (objects and background) is shifted by an offset drawn uniformly
    from [-jitter_px, jitter_px]^2 for every frame independently.
  * light: lighting L > 0 multiplies the contrast about mid-grey by 1 + L/2 sin(.) and the
    brightness by 1 + L sin(.), smooth sinusoids of period U(1, 2) x the sequence length with
    random phase; greyscale then sets R = G = B = rint(0.299 R + 0.587 G + 0.114 B).

Files (`write_scene_set`): `output_dir/train/seq_00000.npz`, ..., `output_dir/test/...`, each
with `image` uint8 [T, 64, 64, 3] and `true_object_pos` float32 [T, N, 2] (compressed .npz, the
format `data/video_folder.py` reads), and `output_dir/scene_set.json` (the spec, seed, counts).
Sequence i of a split depends only on (seed, split, i): train and test draw from different
seed streams. Train on a set with `train.py --dataset output_dir` (the folder reader names
scene_set.json once as an ignored file).

Command line: `python -m video_structure.data.synthetic_scenes --set NAME --output DIR
[--seed S]`, `--list` prints the sets; `--set random_<seed>` draws a new set with
`make_random_spec(seed)`.

Speed: writing one set of 400 + 100 sequences of 40 frames took 5.0 to 13.1 s of CPU time
(10 to 24 s of wall time, fsync included) on one core of a 2-core Intel Xeon, measured on
2026-12-07 while a training run used both cores (docs/dev_suite.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import time
import zipfile
from typing import Optional, Union

import numpy as np

from video_structure import io_utils

SHAPES = ("disc", "square", "triangle", "ring", "cross")
BACKGROUNDS = ("flat", "noise", "stripes", "checker")
MOTIONS = ("bounce", "momentum")

MIN_OBJECTS, MAX_OBJECTS = 2, 8
# Ranges of the spec's numbers (inclusive; pixels of a 64x64 frame).
SIZE_RANGE_PX = (4.0, 24.0)
SPEED_RANGE_PX = (0.0, 6.0)  # Exclusive of 0.
TEXTURE_SCALE_RANGE_PX = (2.0, 64.0)
DRIFT_RANGE_PX = (0.0, 3.0)
JITTER_RANGE_PX = (0.0, 4.0)
LEAVE_FRAME_RANGE_PX = (0.0, 32.0)
LIGHTING_RANGE = (0.0, 0.5)

MOMENTUM = 0.9  # Per-frame velocity memory of the "momentum" motion.
BOUNCE_SPEED_SPREAD = 0.2  # Bounce speed: speed_px x U(1 - spread, 1 + spread) per sequence.
RING_THICKNESS = 0.2  # Ring width / size (at least 1.5 px).
CROSS_ARM = 1.0 / 3.0  # Cross arm width / size.
NOISE_TILE_PX = 128  # Period of the noise texture (pixels of a 64x64 frame).
REFERENCE_SIZE = 64  # Sizes and speeds are given in pixels of a frame of this size.
PX_PER_UNIT = (REFERENCE_SIZE - 1) / 2.0  # 31.5 px of a 64x64 frame per coordinate unit.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)

FORMAT_VERSION = 1
DESCRIPTION_FILE = "scene_set.json"
SPLIT_STREAMS = {"train": 0, "test": 1}  # Seed streams of the splits.
_RANDOM_SPEC_STREAM = 104729  # Seed stream of make_random_spec.
_RANDOM_PREFIX = "random_"


# ----------------------------------------------------------------------------------------
# Specs
# ----------------------------------------------------------------------------------------


def _check_number(owner, field, value, low, high, low_inclusive=True):
  if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
    raise ValueError(f"{owner}.{field} must be a number, got {value!r}.")
  value = float(value)
  if not math.isfinite(value) or value > high or (value < low if low_inclusive else value <= low):
    interval = f"{'[' if low_inclusive else '('}{low:g}, {high:g}]"
    raise ValueError(f"{owner}.{field} must be in {interval}, got {value!r}.")
  return value


def _check_colour(owner, field, value):
  try:
    colour = tuple(value)
  except TypeError:
    colour = ()
  if (len(colour) != 3 or any(isinstance(c, bool) or not isinstance(c, (int, np.integer))
                              or not 0 <= c <= 255 for c in colour)):
    raise ValueError(f"{owner}.{field} must be 3 integers (R, G, B) in [0, 255], got {value!r}.")
  return tuple(int(c) for c in colour)


def _check_bool(owner, field, value):
  if not isinstance(value, (bool, np.bool_)):
    raise ValueError(f"{owner}.{field} must be True or False, got {value!r}.")
  return bool(value)


def _check_choice(owner, field, value, choices):
  if value not in choices:
    raise ValueError(f"{owner}.{field} must be one of {', '.join(choices)}; got {value!r}.")
  return value


@dataclasses.dataclass(frozen=True)
class ObjectSpec:
  """One object of a set: the same in every sequence.

  Attributes:
    shape: one of SHAPES.
    size_px: width in pixels of a 64x64 frame (the disc's and ring's diameter, the square's
      side, the cross's span, the triangle's base; the triangle points up), in [4, 24].
    colour: (R, G, B) integers in [0, 255].
    speed_px: typical speed in pixels of a 64x64 frame per frame, in (0, 6].
  """

  shape: str
  size_px: float
  colour: tuple
  speed_px: float

  def __post_init__(self):
    owner = "ObjectSpec"
    _check_choice(owner, "shape", self.shape, SHAPES)
    object.__setattr__(self, "size_px", _check_number(owner, "size_px", self.size_px,
                                                      *SIZE_RANGE_PX))
    object.__setattr__(self, "colour", _check_colour(owner, "colour", self.colour))
    object.__setattr__(self, "speed_px", _check_number(owner, "speed_px", self.speed_px,
                                                       *SPEED_RANGE_PX, low_inclusive=False))


@dataclasses.dataclass(frozen=True)
class SceneSetSpec:
  """A set of synthetic videos (see the module docstring for how each field is rendered).

  Attributes:
    name: lower-case letters, digits and underscores.
    description: one line: what the set tests.
    objects: 2 to 8 ObjectSpec, in depth order (the first at the back).
    background: one of BACKGROUNDS.
    background_colour: (R, G, B), the flat colour or the texture's first colour.
    texture_colour: (R, G, B), the texture's second colour; None for a flat background.
    texture_scale_px: noise correlation length, stripe or checker period, in [2, 64] px.
    background_drift_px: texture drift per frame in [0, 3] px (0 for a flat background).
    jitter_px: camera shake, the largest shift per axis and frame, in [0, 4] px.
    occlusions: True: objects pass over each other (the later drawn in front); False: they
      bounce off each other.
    leave_frame_px: 0: objects stay inside the frame; > 0 (up to 32): how far beyond wholly
      leaving the view an object's centre may go before it turns back.
    lighting: amplitude in [0, 0.5] of the smooth brightness and contrast change.
    greyscale: frames with R = G = B.
    motion: one of MOTIONS.
  """

  name: str
  description: str
  objects: tuple
  background: str = "flat"
  background_colour: tuple = (40, 40, 40)
  texture_colour: Optional[tuple] = None
  texture_scale_px: float = 8.0
  background_drift_px: float = 0.0
  jitter_px: float = 0.0
  occlusions: bool = True
  leave_frame_px: float = 0.0
  lighting: float = 0.0
  greyscale: bool = False
  motion: str = "bounce"

  def __post_init__(self):
    owner = "SceneSetSpec"

    def set_field(field, value):
      object.__setattr__(self, field, value)

    if not isinstance(self.name, str) or not re.fullmatch(r"[a-z0-9_]+", self.name):
      raise ValueError(f"{owner}.name must be lower-case letters, digits and underscores, got "
                       f"{self.name!r}.")
    if not isinstance(self.description, str) or "\n" in self.description:
      raise ValueError(f"{owner}.description must be a string of one line, got "
                       f"{self.description!r}.")
    objects = tuple(self.objects) if isinstance(self.objects, (list, tuple)) else None
    if (objects is None or not MIN_OBJECTS <= len(objects) <= MAX_OBJECTS
        or not all(isinstance(item, ObjectSpec) for item in objects)):
      raise ValueError(f"{owner}.objects must be {MIN_OBJECTS} to {MAX_OBJECTS} ObjectSpec, got "
                       f"{self.objects!r}.")
    set_field("objects", objects)
    _check_choice(owner, "background", self.background, BACKGROUNDS)
    set_field("background_colour",
              _check_colour(owner, "background_colour", self.background_colour))
    if self.background == "flat":
      if self.texture_colour is not None:
        raise ValueError(f"{owner}.texture_colour must be None for a flat background, got "
                         f"{self.texture_colour!r}.")
    else:
      set_field("texture_colour", _check_colour(owner, "texture_colour", self.texture_colour))
    set_field("texture_scale_px", _check_number(owner, "texture_scale_px",
                                                self.texture_scale_px, *TEXTURE_SCALE_RANGE_PX))
    set_field("background_drift_px", _check_number(owner, "background_drift_px",
                                                   self.background_drift_px, *DRIFT_RANGE_PX))
    if self.background == "flat" and self.background_drift_px != 0:
      raise ValueError(f"{owner}.background_drift_px must be 0 for a flat background (nothing "
                       f"would move), got {self.background_drift_px!r}.")
    set_field("jitter_px", _check_number(owner, "jitter_px", self.jitter_px, *JITTER_RANGE_PX))
    set_field("occlusions", _check_bool(owner, "occlusions", self.occlusions))
    set_field("leave_frame_px", _check_number(owner, "leave_frame_px", self.leave_frame_px,
                                              *LEAVE_FRAME_RANGE_PX))
    set_field("lighting", _check_number(owner, "lighting", self.lighting, *LIGHTING_RANGE))
    set_field("greyscale", _check_bool(owner, "greyscale", self.greyscale))
    _check_choice(owner, "motion", self.motion, MOTIONS)

  @property
  def num_objects(self) -> int:
    return len(self.objects)

  def to_dict(self) -> dict:
    """The spec as JSON-compatible values (`from_dict` inverts it)."""
    return json.loads(json.dumps(dataclasses.asdict(self)))

  @classmethod
  def from_dict(cls, values: dict) -> "SceneSetSpec":
    values = dict(values)
    values["objects"] = tuple(ObjectSpec(**item) for item in values["objects"])
    return cls(**values)


def _objects(*rows):
  return tuple(ObjectSpec(shape, size, colour, speed) for shape, size, colour, speed in rows)


# The suite. Each set is deliberately different from Basketball and from the others;
# docs/dev_suite.md says what each one tests.
SCENE_SETS = {spec.name: spec for spec in (
    SceneSetSpec(
        name="pair_collide",
        description="2 large non-disc objects (square, cross) on a flat dark floor, bouncing "
                    "off the walls and each other: fewer objects than any other set",
        objects=_objects(("square", 12, (235, 140, 30), 1.2),
                         ("cross", 9, (120, 230, 255), 2.4)),
        background="flat", background_colour=(38, 46, 60), occlusions=False,
        motion="bounce"),
    SceneSetSpec(
        name="drifting_noise",
        description="4 objects of 4 shapes on smooth green noise that drifts 0.5 px per "
                    "frame, random walk with momentum: every background pixel changes",
        objects=_objects(("disc", 9, (215, 35, 35), 1.5),
                         ("triangle", 11, (250, 225, 40), 2.2),
                         ("ring", 11, (40, 70, 230), 1.0),
                         ("square", 7, (225, 40, 210), 2.8)),
        background="noise", background_colour=(70, 112, 62), texture_colour=(125, 155, 85),
        texture_scale_px=5.0, background_drift_px=0.5, motion="momentum"),
    SceneSetSpec(
        name="shaky_checker",
        description="5 discs and squares on a static beige checker seen by a camera shaking "
                    "up to 2 px per frame: objects and background move together",
        objects=_objects(("disc", 8, (200, 20, 30), 1.8),
                         ("square", 8, (20, 60, 200), 1.2),
                         ("disc", 6, (10, 140, 50), 2.6),
                         ("square", 10, (120, 40, 150), 0.9),
                         ("disc", 10, (20, 20, 20), 1.5)),
        background="checker", background_colour=(200, 188, 165), texture_colour=(160, 148, 128),
        texture_scale_px=16.0, jitter_px=2.0, motion="bounce"),
    SceneSetSpec(
        name="occluding_crowd",
        description="8 objects of 5 to 13 px, two pairs alike in colour, passing over each "
                    "other in a fixed depth order on static grey stripes",
        objects=_objects(("disc", 13, (200, 30, 30), 0.9),
                         ("square", 11, (40, 60, 210), 1.3),
                         ("ring", 12, (240, 240, 240), 1.1),
                         ("disc", 9, (235, 80, 55), 1.7),
                         ("triangle", 10, (250, 200, 0), 2.0),
                         ("cross", 9, (20, 170, 60), 1.5),
                         ("square", 7, (60, 100, 235), 2.4),
                         ("disc", 5, (15, 15, 15), 2.8)),
        background="stripes", background_colour=(125, 130, 140), texture_colour=(160, 165, 175),
        texture_scale_px=12.0, motion="momentum"),
    SceneSetSpec(
        name="exits_and_entries",
        description="4 objects at 1 to 3.5 px per frame that leave the frame (positions "
                    "outside [-1, 1]) and come back, on static dark noise",
        objects=_objects(("disc", 10, (240, 120, 20), 1.0),
                         ("square", 8, (60, 200, 240), 2.0),
                         ("triangle", 12, (230, 230, 230), 2.8),
                         ("ring", 9, (240, 60, 160), 3.5)),
        background="noise", background_colour=(30, 30, 45), texture_colour=(65, 60, 85),
        texture_scale_px=8.0, leave_frame_px=5.0, motion="bounce"),
    SceneSetSpec(
        name="grey_flicker",
        description="greyscale, brightness and contrast changing by up to 30% within a "
                    "sequence, 5 shapes on static grey noise, one close to the floor's grey",
        objects=_objects(("disc", 9, (255, 255, 255), 1.6),
                         ("square", 9, (0, 0, 0), 1.1),
                         ("triangle", 11, (200, 200, 200), 2.2),
                         ("cross", 10, (30, 30, 30), 1.4),
                         ("ring", 10, (60, 60, 60), 2.0)),
        background="noise", background_colour=(115, 115, 115), texture_colour=(145, 145, 145),
        texture_scale_px=6.0, lighting=0.3, greyscale=True, motion="momentum"),
    SceneSetSpec(
        name="small_camouflage",
        description="6 small objects (4 to 6 px), two coloured like the green stripes they "
                    "move over; the stripes drift 0.3 px per frame",
        objects=_objects(("disc", 5, (230, 30, 30), 1.5),
                         ("square", 4, (255, 255, 255), 2.0),
                         ("disc", 6, (150, 185, 60), 1.2),
                         ("triangle", 6, (30, 30, 200), 2.5),
                         ("square", 5, (40, 90, 40), 1.8),
                         ("disc", 4, (250, 210, 0), 1.0)),
        background="stripes", background_colour=(60, 125, 70), texture_colour=(95, 160, 95),
        texture_scale_px=9.0, background_drift_px=0.3, motion="bounce"),
    SceneSetSpec(
        name="everything",
        description="6 objects with all at once: drifting noise, 1 px shake, light changes, "
                    "occlusions, exits from the frame, random walk with momentum",
        objects=_objects(("disc", 10, (220, 40, 40), 1.4),
                         ("ring", 11, (250, 250, 250), 1.0),
                         ("square", 8, (250, 200, 20), 2.2),
                         ("triangle", 10, (40, 80, 230), 1.8),
                         ("cross", 9, (20, 20, 20), 2.6),
                         ("disc", 6, (240, 120, 220), 3.0)),
        background="noise", background_colour=(95, 80, 60), texture_colour=(140, 120, 90),
        texture_scale_px=7.0, background_drift_px=0.4, jitter_px=1.0, leave_frame_px=4.0,
        lighting=0.2, motion="momentum"),
)}


def _luma(colour):
  return float(np.dot(LUMA, np.asarray(colour, np.float32)))


def _distance_to_segment(point, start, end):
  """Euclidean distance from `point` to the segment [start, end] (any dimension)."""
  point, start, end = (np.asarray(v, np.float64).reshape(-1) for v in (point, start, end))
  direction = end - start
  length2 = float(direction @ direction)
  share = 0.0 if length2 == 0 else float(np.clip((point - start) @ direction / length2, 0, 1))
  return float(np.linalg.norm(point - start - share * direction))


def object_contrast(spec: SceneSetSpec, index: int) -> float:
  """How far object `index`'s colour is from every colour of the background: the distance in
  RGB (in luminance for greyscale sets) to the segment between the background's two colours."""
  colour = spec.objects[index].colour
  texture = spec.texture_colour or spec.background_colour
  if spec.greyscale:
    return _distance_to_segment(_luma(colour), _luma(spec.background_colour), _luma(texture))
  return _distance_to_segment(colour, spec.background_colour, texture)


# make_random_spec: least object contrast, RGB distance (colour) or luminance (greyscale).
RANDOM_MIN_CONTRAST_RGB = 70.0
RANDOM_MIN_CONTRAST_LUMA = 40.0


def make_random_spec(seed: int) -> SceneSetSpec:
  """Draws a whole new set from the ranges of the suite, e.g. a held-back set for a final check.

  Named `random_<seed>`; the same seed gives the same spec. Drawn independently: 2 to 8 objects
  (shape uniform over SHAPES, size U(5, 13) px, speed U(0.8, 3) px per frame, a random colour
  at least 70 RGB levels (40 luminance levels in greyscale) from every background colour),
  the background kind (uniform over BACKGROUNDS; a random colour in [30, 225] per channel, the
  texture's second colour 30 to 60 RGB levels from it, scale U(4, 16) px, drifting U(0.2, 0.8)
  px per frame with probability 1/2), camera shake U(0.5, 2.5) px with probability 1/2,
  leaving the frame (U(4, 10) px) with probability 1/3, lighting U(0.1, 0.3) with probability
  1/2, greyscale with probability 1/5, occlusions with probability 3/4, the motion model
  uniform.

  Args:
    seed: a non-negative integer.

  Returns:
    A valid SceneSetSpec.
  """
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
  rng = np.random.default_rng([_RANDOM_SPEC_STREAM, int(seed)])
  num_objects = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))
  background = str(rng.choice(BACKGROUNDS))
  greyscale = bool(rng.random() < 0.2)

  def grey_if(colour):
    return tuple(int(round(_luma(colour))) for _ in range(3)) if greyscale else colour

  background_colour = grey_if(tuple(int(c) for c in rng.integers(30, 226, 3)))
  texture_colour, drift = None, 0.0
  if background != "flat":
    while True:
      step = rng.normal(size=3)
      step = step / np.linalg.norm(step) * rng.uniform(30, 60)
      texture_colour = grey_if(tuple(int(c) for c in np.clip(
          np.rint(np.asarray(background_colour) + step), 0, 255)))
      if np.linalg.norm(np.subtract(texture_colour, background_colour)) >= 20:
        break
    if rng.random() < 0.5:
      drift = round(float(rng.uniform(0.2, 0.8)), 2)
  scale = round(float(rng.uniform(4, 16)), 1)
  jitter = round(float(rng.uniform(0.5, 2.5)), 2) if rng.random() < 0.5 else 0.0
  leave = round(float(rng.uniform(4, 10)), 1) if rng.random() < 1 / 3 else 0.0
  lighting = round(float(rng.uniform(0.1, 0.3)), 2) if rng.random() < 0.5 else 0.0
  occlusions = bool(rng.random() < 0.75)
  motion = str(rng.choice(MOTIONS))
  probe = SceneSetSpec(name="probe", description="", objects=_objects(
      ("disc", 8, (0, 0, 0), 1), ("disc", 8, (0, 0, 0), 1)), background=background,
                       background_colour=background_colour, texture_colour=texture_colour,
                       greyscale=greyscale)
  minimum = RANDOM_MIN_CONTRAST_LUMA if greyscale else RANDOM_MIN_CONTRAST_RGB
  objects = []
  for _ in range(num_objects):
    for _ in range(10_000):
      colour = tuple(int(c) for c in rng.integers(0, 256, 3))
      candidate = dataclasses.replace(probe, objects=(ObjectSpec("disc", 8, colour, 1),) * 2)
      if object_contrast(candidate, 0) >= minimum:
        break
    else:  # Cannot happen for these ranges (a colour of some channel extreme always fits).
      raise RuntimeError(f"make_random_spec({seed}): found no colour far from the background.")
    objects.append(ObjectSpec(str(rng.choice(SHAPES)), round(float(rng.uniform(5, 13)), 1),
                              colour, round(float(rng.uniform(0.8, 3.0)), 2)))
  return SceneSetSpec(
      name=f"{_RANDOM_PREFIX}{int(seed)}",
      description=f"drawn by make_random_spec({int(seed)})", objects=tuple(objects),
      background=background, background_colour=background_colour, texture_colour=texture_colour,
      texture_scale_px=scale, background_drift_px=drift, jitter_px=jitter,
      occlusions=occlusions, leave_frame_px=leave, lighting=lighting, greyscale=greyscale,
      motion=motion)


def get_spec(name_or_spec: Union[str, SceneSetSpec]) -> SceneSetSpec:
  """A SceneSetSpec, a name of SCENE_SETS, or `random_<seed>` (`make_random_spec(seed)`)."""
  if isinstance(name_or_spec, SceneSetSpec):
    return name_or_spec
  if isinstance(name_or_spec, str):
    if name_or_spec in SCENE_SETS:
      return SCENE_SETS[name_or_spec]
    match = re.fullmatch(_RANDOM_PREFIX + r"(\d+)", name_or_spec)
    if match:
      return make_random_spec(int(match.group(1)))
  raise ValueError(f"Unknown scene set {name_or_spec!r}; known: {', '.join(SCENE_SETS)}, or "
                   f"{_RANDOM_PREFIX}<seed> for a random set.")


# ----------------------------------------------------------------------------------------
# One sequence: plan (all random draws and the motion), then render
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SequencePlan:
  """Everything random about one sequence; `render_plan` draws it (deterministically).

  Attributes:
    world_positions: float64 [T, N, 2] object centres (x, y) in coordinates, before the
      camera shake.
    camera_offsets: float64 [T, 2] the camera shake (x, y) in coordinates, added to everything.
    background_offsets: float64 [T, 2] the texture's shift (x, y) in coordinates (its random
      phase plus the drift), before the camera shake.
    stripe_angle: the stripes' direction in radians.
    noise_tile: float32 [P, P] values in [0, 1] of the periodic noise (P = NOISE_TILE_PX), or
      None unless the background is "noise".
    gain: float64 [T] brightness factor.
    contrast: float64 [T] contrast factor about mid-grey.
  """

  world_positions: np.ndarray
  camera_offsets: np.ndarray
  background_offsets: np.ndarray
  stripe_angle: float
  noise_tile: Optional[np.ndarray]
  gain: np.ndarray
  contrast: np.ndarray

  @property
  def positions(self) -> np.ndarray:
    """float32 [T, N, 2] object positions in frame coordinates (the true positions)."""
    return (self.world_positions + self.camera_offsets[:, None, :]).astype(np.float32)


def _noise_tile(rng, scale_px):
  """[P, P] smooth periodic noise in [0, 1]: white noise low-passed with a Gaussian of
  standard deviation scale_px / 2, standardised and mapped to 0.5 + 0.22 z (clipped)."""
  size = NOISE_TILE_PX
  frequencies = np.fft.fftfreq(size)
  squared = frequencies[:, None] ** 2 + frequencies[None, :] ** 2
  sigma = scale_px / 2.0
  response = np.exp(-2.0 * (np.pi * sigma) ** 2 * squared)
  noise = np.fft.ifft2(np.fft.fft2(rng.standard_normal((size, size))) * response).real
  noise = (noise - noise.mean()) / noise.std()
  return np.clip(0.5 + 0.22 * noise, 0.0, 1.0).astype(np.float32)


def _simulate(spec, rng, num_frames):
  """World positions [T, N, 2] in pixels of a 64x64 frame (x right, y down); see the module
  docstring for the motion."""
  num_objects = spec.num_objects
  radii = np.array([item.size_px / 2.0 for item in spec.objects])
  speeds = np.array([item.speed_px for item in spec.objects])
  half = PX_PER_UNIT
  inside = half - radii - spec.jitter_px  # Whole objects stay in the frame, shaken or not.
  walls = inside if spec.leave_frame_px == 0 else half + radii + spec.leave_frame_px
  position = rng.uniform(-1.0, 1.0, (num_objects, 2)) * inside[:, None]
  if not spec.occlusions:  # Start apart: redraw an object that overlaps an earlier one.
    for m in range(1, num_objects):
      for _ in range(100):
        gaps = np.linalg.norm(position[:m] - position[m], axis=1) - radii[:m] - radii[m]
        if gaps.min() > 1.0:
          break
        position[m] = rng.uniform(-1.0, 1.0, 2) * inside[m]
  if spec.motion == "bounce":
    angle = rng.uniform(0.0, 2.0 * np.pi, num_objects)
    speed = speeds * rng.uniform(1 - BOUNCE_SPEED_SPREAD, 1 + BOUNCE_SPEED_SPREAD, num_objects)
    velocity = speed[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    kicks = np.zeros((num_frames, num_objects, 2))
  else:
    sigma = speeds[:, None] / np.sqrt(2.0)
    velocity = rng.standard_normal((num_objects, 2)) * sigma
    kicks = rng.standard_normal((num_frames, num_objects, 2)) * (
        sigma * np.sqrt(1.0 - MOMENTUM ** 2))
  positions = np.empty((num_frames, num_objects, 2))
  positions[0] = position
  eye = np.eye(num_objects, dtype=bool)
  contact = radii[:, None] + radii[None, :]
  for t in range(1, num_frames):
    if spec.motion == "momentum":
      velocity = MOMENTUM * velocity + kicks[t]
    position = position + velocity
    for limit_sign in (1.0, -1.0):  # Reflect at the walls.
      beyond = limit_sign * position > walls[:, None]
      position = np.where(beyond, 2.0 * limit_sign * walls[:, None] - position, position)
      velocity = np.where(beyond, -velocity, velocity)
    if not spec.occlusions:  # Equal-mass elastic collisions of the discs of diameter size.
      offset = position[:, None, :] - position[None, :, :]  # [N, N, 2] p_i - p_j
      distance = np.linalg.norm(offset, axis=-1)
      normal = offset / np.maximum(distance, 1e-9)[..., None]
      touching = (distance < contact) & ~eye
      closing = np.sum((velocity[:, None, :] - velocity[None, :, :]) * normal, axis=-1)
      impulse = np.where(touching & (closing < 0), closing, 0.0)
      velocity = velocity - np.sum(impulse[..., None] * normal, axis=1)
      push = np.where(touching, (contact - distance) / 2.0, 0.0)
      position = position + np.sum(push[..., None] * normal, axis=1)
      position = np.clip(position, -walls[:, None], walls[:, None])
    positions[t] = position
  return positions


def plan_sequence(spec: SceneSetSpec, rng: np.random.Generator, num_frames: int) -> SequencePlan:
  """Draws everything random about one sequence of `spec` from `rng` (see the module docstring).

  Args:
    spec: the set.
    rng: a numpy Generator (consumed).
    num_frames: T >= 1.

  Returns:
    A SequencePlan.
  """
  if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or (
      num_frames < 1):
    raise ValueError(f"num_frames must be an integer >= 1, got {num_frames!r}.")
  num_frames = int(num_frames)
  world_px = _simulate(spec, rng, num_frames)
  to_units = np.array([1.0, -1.0]) / PX_PER_UNIT  # (right, down) px -> (x, y) coordinates.
  camera_px = rng.uniform(-spec.jitter_px, spec.jitter_px, (num_frames, 2))
  phase_px = rng.uniform(0.0, NOISE_TILE_PX, 2)
  drift_angle = rng.uniform(0.0, 2.0 * np.pi)
  drift_px = (spec.background_drift_px * np.arange(num_frames)[:, None]
              * np.array([np.cos(drift_angle), np.sin(drift_angle)]))
  stripe_angle = float(rng.uniform(0.0, np.pi))
  noise_tile = _noise_tile(rng, spec.texture_scale_px) if spec.background == "noise" else None
  if spec.lighting > 0:
    time = np.arange(num_frames)
    periods = rng.uniform(1.0, 2.0, 2) * num_frames
    phases = rng.uniform(0.0, 2.0 * np.pi, 2)
    gain = 1.0 + spec.lighting * np.sin(2.0 * np.pi * time / periods[0] + phases[0])
    contrast = 1.0 + 0.5 * spec.lighting * np.sin(2.0 * np.pi * time / periods[1] + phases[1])
  else:
    gain = contrast = np.ones(num_frames)
  return SequencePlan(world_positions=world_px * to_units, camera_offsets=camera_px * to_units,
                      background_offsets=(phase_px + drift_px) * to_units,
                      stripe_angle=stripe_angle, noise_tile=noise_tile, gain=gain,
                      contrast=contrast)


def _texture(spec, plan, u, v):
  """Texture values in [0, 1] at the world points (u[t, 0, j], v[t, i, 0]): u right, v down, in
  pixels of a 64x64 frame; u: [T', 1, S], v: [T', S, 1]. Returns float32 [T', S, S]."""
  period = spec.texture_scale_px
  if spec.background == "stripes":
    along = u * np.cos(plan.stripe_angle) + v * np.sin(plan.stripe_angle)
    return (0.5 + 0.5 * np.sin(2.0 * np.pi * along / period)).astype(np.float32)
  if spec.background == "checker":
    # Anti-aliased squares of side period / 2: the product crosses 0 with a slope of
    # 2 pi / period per px at an edge, so the gain makes the edge about 1 px wide.
    product = np.sin(2.0 * np.pi * u / period) * np.sin(2.0 * np.pi * v / period)
    return np.clip(0.5 + product * period / (2.0 * np.pi), 0.0, 1.0).astype(np.float32)
  # "noise": bilinear interpolation of the periodic tile, separable (rows, then columns).
  tile = plan.noise_tile
  size = tile.shape[0]
  v0, u0 = np.floor(v), np.floor(u)
  fv = (v - v0).astype(np.float32)  # [T', S, 1]
  fu = (u - u0).astype(np.float32)[:, 0, :]  # [T', S]
  i0 = np.mod(v0[..., 0], size).astype(np.int64)  # [T', S]
  j0 = np.mod(u0[:, 0, :], size).astype(np.int64)  # [T', S]
  rows = tile[i0] * (1.0 - fv) + tile[(i0 + 1) % size] * fv  # [T', S rows, P]
  left = np.take_along_axis(rows, np.broadcast_to(j0[:, None, :], rows.shape[:2] + j0.shape[1:]),
                            axis=2)
  j1 = (j0 + 1) % size
  right = np.take_along_axis(rows, np.broadcast_to(j1[:, None, :], left.shape), axis=2)
  return left + (right - left) * fu[:, None, :]


def _backgrounds(spec, plan, image_size):
  """float32 [T or 1, S, S, 3] background frames (one frame if it never changes)."""
  base = np.asarray(spec.background_colour, np.float32)
  if spec.background == "flat":
    return np.broadcast_to(base, (1, image_size, image_size, 3))
  shift = plan.background_offsets + plan.camera_offsets  # [T, 2] coordinates.
  if spec.background_drift_px == 0 and spec.jitter_px == 0:
    shift = shift[:1]
  grid = np.linspace(-1.0, 1.0, image_size)
  # The world point seen at each pixel, in pixels of a 64x64 frame (u right, v down).
  u = (grid[None, None, :] - shift[:, 0, None, None]) * PX_PER_UNIT  # [T', 1, S]
  v = (grid[None, :, None] + shift[:, 1, None, None]) * PX_PER_UNIT  # [T', S, 1]
  values = _texture(spec, plan, u, v)[..., None]
  return base + values * (np.asarray(spec.texture_colour, np.float32) - base)


def _signed_distance(shape, dx, dy, size):
  """Signed distance in px (negative inside) of a shape of width `size` centred at 0 (dy down)."""
  radius = size / 2.0
  if shape == "disc":
    return np.sqrt(dx ** 2 + dy ** 2) - radius
  if shape == "ring":
    width = max(1.5, RING_THICKNESS * size)
    return np.abs(np.sqrt(dx ** 2 + dy ** 2) - (radius - width / 2.0)) - width / 2.0
  if shape == "square":
    return np.maximum(np.abs(dx), np.abs(dy)) - radius
  if shape == "cross":
    arm = CROSS_ARM * size / 2.0
    return np.minimum(np.maximum(np.abs(dx) - radius, np.abs(dy) - arm),
                      np.maximum(np.abs(dx) - arm, np.abs(dy) - radius))
  # Triangle pointing up, centroid at 0, base `size`: three edges at the inradius.
  inradius = size / (2.0 * np.sqrt(3.0))
  s = np.sqrt(3.0) / 2.0
  return np.maximum(dy, np.abs(s * dx) - 0.5 * dy) - inradius


def render_plan(spec: SceneSetSpec, plan: SequencePlan, image_size: int = 64):
  """Draws a planned sequence.

  Args:
    spec: the set.
    plan: from `plan_sequence` (possibly edited).
    image_size: S >= 8.

  Returns:
    (uint8 [T, S, S, 3] frames, float32 [T, N, 2] true positions (x, y) in frame coordinates,
    x right, y up; `plan.positions`).
  """
  if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or (
      image_size < 8):
    raise ValueError(f"image_size must be an integer >= 8, got {image_size!r}.")
  image_size = int(image_size)
  positions = plan.positions
  num_frames = positions.shape[0]
  scale = image_size / REFERENCE_SIZE
  sizes = np.array([item.size_px for item in spec.objects]) * scale
  half_patch = int(np.ceil(sizes.max() / 2.0 + 1.0))
  padded = image_size + 2 * half_patch
  canvas = np.empty((num_frames, padded, padded, 3), np.float32)
  canvas[:] = np.asarray(spec.background_colour, np.float32)
  inner = (slice(None), slice(half_patch, half_patch + image_size),
           slice(half_patch, half_patch + image_size))
  canvas[inner] = _backgrounds(spec, plan, image_size)
  pixels = canvas.reshape(-1, 3)
  # Sub-pixel centres in the frame's pixels (the project's convention, module docstring).
  columns = (positions[..., 0].astype(np.float64) + 1.0) * (image_size - 1) / 2.0  # [T, N]
  rows = (1.0 - positions[..., 1].astype(np.float64)) * (image_size - 1) / 2.0
  offsets = np.arange(-half_patch, half_patch + 1)
  frame_start = (np.arange(num_frames) * padded * padded)[:, None, None]
  limit = (0, image_size - 1)
  for m, item in enumerate(spec.objects):  # Depth order: later objects in front.
    # The (2 half_patch + 1)^2 pixels around the nearest pixel, that pixel kept inside the
    # frame: for an object beyond the edge the patch still holds every pixel of the frame it
    # covers (they lie within radius + 1 < half_patch of the edge pixel).
    centre_column = np.clip(np.floor(columns[:, m] + 0.5), *limit).astype(np.int64)
    centre_row = np.clip(np.floor(rows[:, m] + 0.5), *limit).astype(np.int64)
    patch_columns = centre_column[:, None] + offsets  # [T, P]
    patch_rows = centre_row[:, None] + offsets
    dx = (patch_columns - columns[:, m, None])[:, None, :]  # [T, 1, P]
    dy = (patch_rows - rows[:, m, None])[:, :, None]  # [T, P, 1]
    coverage = np.clip(0.5 - _signed_distance(item.shape, dx, dy, sizes[m]), 0.0, 1.0)
    coverage = coverage.astype(np.float32)[..., None]  # [T, P, P, 1]
    index = (frame_start + (patch_rows + half_patch)[:, :, None] * padded
             + (patch_columns + half_patch)[:, None, :])  # [T, P, P]
    patch = pixels[index]
    pixels[index] = patch + coverage * (np.asarray(item.colour, np.float32) - patch)
  frames = canvas[inner]
  if spec.lighting > 0:
    contrast = plan.contrast.astype(np.float32)[:, None, None, None]
    gain = plan.gain.astype(np.float32)[:, None, None, None]
    frames = ((frames - 127.5) * contrast + 127.5) * gain
  if spec.greyscale:
    frames = np.repeat((frames @ LUMA)[..., None], 3, axis=-1)
  return np.rint(np.clip(frames, 0.0, 255.0)).astype(np.uint8), positions


def render_sequence(spec: SceneSetSpec, rng: np.random.Generator, num_frames: int,
                    image_size: int = 64):
  """One random sequence of a set: `render_plan(spec, plan_sequence(spec, rng, num_frames))`.

  Args:
    spec: the set.
    rng: a numpy Generator (consumed).
    num_frames: T >= 1.
    image_size: S >= 8 (sizes, speeds, shake and drift scale with S / 64).

  Returns:
    (uint8 [T, S, S, 3] frames, float32 [T, N, 2] object positions (x, y) in [-1, 1] of the
    frame, x right, y up; outside [-1, 1] for objects out of view).
  """
  return render_plan(spec, plan_sequence(spec, rng, num_frames), image_size)


def sequence_rng(seed: int, split: str, index: int) -> np.random.Generator:
  """The Generator of sequence `index` of `split` of a set written with `seed`."""
  return np.random.default_rng([int(seed), SPLIT_STREAMS[split], int(index)])


# ----------------------------------------------------------------------------------------
# Writing a set
# ----------------------------------------------------------------------------------------


def sequence_path(output_dir, split: str, index: int) -> str:
  return os.path.join(os.fspath(output_dir), split, f"seq_{index:05d}.npz")


def _check_count(name, value, minimum):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
  return int(value)


def _save_npz(path, images, positions):
  """An .npz (a zip of .npy files, as np.savez_compressed writes) at zlib level 1: 4x faster
  than savez_compressed's level 6 for 1.2x the size. Atomic."""

  def save(temporary):
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
      for key, array in (("image", images), ("true_object_pos", positions)):
        with archive.open(f"{key}.npy", "w", force_zip64=True) as stream:
          np.lib.format.write_array(stream, np.ascontiguousarray(array), allow_pickle=False)

  io_utils.atomic_save(path, save)


def write_scene_set(name_or_spec: Union[str, SceneSetSpec], output_dir, num_train: int = 400,
                    num_test: int = 100, num_frames: int = 40, seed: int = 0,
                    verbose: bool = False) -> dict:
  """Writes a set as .npz sequences for `train.py --dataset output_dir`.

  Writes `output_dir/train/seq_00000.npz` ... and `output_dir/test/seq_00000.npz` ... (`image`
  uint8 [T, 64, 64, 3], `true_object_pos` float32 [T, N, 2]; each file atomically) and
  `output_dir/scene_set.json` (the spec, seed, counts, and "complete"). Sequence i of a split
  is `render_sequence(spec, sequence_rng(seed, split, i), num_frames)`.

  If output_dir already holds this very set (same spec, seed and counts) and it is complete,
  nothing is written; if it is incomplete (an interrupted run), the missing files are written.
  A directory holding a different set, or other files, is an error (nothing is overwritten).

  Args:
    name_or_spec: a SceneSetSpec, a name of SCENE_SETS or `random_<seed>`.
    output_dir: the set's directory (created if needed).
    num_train: training sequences (>= 1).
    num_test: test sequences (>= 0).
    num_frames: frames per sequence (>= 2).
    seed: a non-negative integer.
    verbose: print one line when it starts writing and one when it is done.

  Returns:
    The description written to scene_set.json, with "written": the number of sequence files
    written by this call (0 when the set was already complete).

  Raises:
    ValueError for a bad argument; FileExistsError if output_dir holds something else.
  """
  spec = get_spec(name_or_spec)
  num_train = _check_count("num_train", num_train, 1)
  num_test = _check_count("num_test", num_test, 0)
  num_frames = _check_count("num_frames", num_frames, 2)
  seed = _check_count("seed", seed, 0)
  output_dir = os.path.abspath(os.fspath(output_dir))
  description = {
      "format_version": FORMAT_VERSION,
      "generator": "video_structure.data.synthetic_scenes",
      "spec": spec.to_dict(), "seed": seed, "num_train": num_train, "num_test": num_test,
      "num_frames": num_frames, "image_size": REFERENCE_SIZE,
  }
  description_path = os.path.join(output_dir, DESCRIPTION_FILE)
  existing = _existing_description(output_dir, description_path)
  if existing is not None:
    differences = [key for key in sorted((set(description) | set(existing)) - {"complete"})
                   if existing.get(key) != description.get(key)]
    if differences:
      old_name = existing.get("spec", {}).get("name") if isinstance(existing.get("spec"),
                                                                  dict) else None
      raise FileExistsError(
          f"{output_dir} already holds a different scene set ({old_name!r}; differs in "
          f"{', '.join(differences)}). Nothing was written: choose another output directory, "
          f"or delete {output_dir} to replace it.")
  counts = {"train": num_train, "test": num_test}
  missing = [(split, index) for split in SPLIT_STREAMS for index in range(counts[split])
             if not os.path.isfile(sequence_path(output_dir, split, index))]
  if existing is not None and existing.get("complete") is True and not missing:
    if verbose:
      print(f"{output_dir} already holds scene set {spec.name!r} (seed {seed}, {num_train} "
            f"train / {num_test} test sequences of {num_frames} frames); nothing to do.",
            flush=True)
    return dict(existing, written=0)
  start = time.perf_counter()
  if verbose:
    print(f"Writing scene set {spec.name!r} (seed {seed}): {len(missing)} sequences of "
          f"{num_frames} frames into {output_dir} ...", flush=True)
  io_utils.atomic_write_json(description_path, dict(description, complete=False), indent=1)
  for split, index in missing:
    images, positions = render_sequence(spec, sequence_rng(seed, split, index), num_frames)
    _save_npz(sequence_path(output_dir, split, index), images, positions)
  description["complete"] = True
  io_utils.atomic_write_json(description_path, description, indent=1)
  if verbose:
    print(f"Wrote {len(missing)} sequences in {time.perf_counter() - start:.1f} s: "
          f"{num_train} train / {num_test} test in {output_dir}.", flush=True)
  return dict(description, written=len(missing))


def _existing_description(output_dir, description_path):
  """The scene_set.json of output_dir, None for a new or empty directory.

  Raises:
    FileExistsError if output_dir holds other files or an unreadable description.
  """
  if not os.path.exists(output_dir):
    return None
  if not os.path.isdir(output_dir):
    raise FileExistsError(f"{output_dir} is a file, not a directory: choose another output "
                          f"directory.")
  if not os.path.isfile(description_path):
    contents = sorted(name for name in os.listdir(output_dir) if not io_utils.is_temporary(name))
    if not contents:
      return None
    raise FileExistsError(
        f"{output_dir} is not empty and holds no {DESCRIPTION_FILE} (found "
        f"{', '.join(contents[:5])}{' ...' if len(contents) > 5 else ''}): it is not a scene "
        f"set. Nothing was written: choose another output directory.")
  try:
    with open(description_path, encoding="utf-8") as stream:
      existing = json.load(stream)
    if not isinstance(existing, dict):
      raise ValueError("not a JSON object")
  except (OSError, ValueError) as error:
    raise FileExistsError(
        f"{description_path} is unreadable ({error}). Nothing was written: choose another "
        f"output directory, or delete {output_dir} to write the set there.") from error
  return existing


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------


def main(argv=None):
  """`python -m video_structure.data.synthetic_scenes --set NAME --output DIR [--seed S]`."""
  parser = argparse.ArgumentParser(
      prog="python -m video_structure.data.synthetic_scenes",
      description="Writes one set of the synthetic development suite (docs/dev_suite.md) as "
                  ".npz sequences with true object positions, for train.py --dataset DIR.")
  parser.add_argument("--list", action="store_true", help="print the sets and exit")
  parser.add_argument("--set", dest="name",
                      help=f"a set of --list, or {_RANDOM_PREFIX}<seed> for a new random set")
  parser.add_argument("--output", help="the set's directory (created; never overwritten)")
  parser.add_argument("--seed", type=int, default=0, help="seed of the sequences (default 0)")
  parser.add_argument("--num_train", type=int, default=400, help="default 400")
  parser.add_argument("--num_test", type=int, default=100, help="default 100")
  parser.add_argument("--num_frames", type=int, default=40, help="default 40")
  args = parser.parse_args(argv)
  if args.list:
    width = max(len(name) for name in SCENE_SETS)
    for name, spec in SCENE_SETS.items():
      print(f"{name:<{width}}  {spec.description}")
    return
  if not args.name or not args.output:
    parser.error("--set and --output are required (or --list)")
  write_scene_set(args.name, args.output, num_train=args.num_train, num_test=args.num_test,
                  num_frames=args.num_frames, seed=args.seed, verbose=True)


if __name__ == "__main__":  # Short errors and --debug, as the project's commands.
  from video_structure.cli import console  # pylint: disable=g-import-not-at-top
  sys.exit(console.run_module(main, __spec__.name))
