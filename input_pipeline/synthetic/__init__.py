"""Synthetic collision videos with exact ground truth: the embedded default dataset.

``generate_video(seed, SceneConfig())`` deterministically (from the integer seed alone, via
``np.random.default_rng(seed)``; no global RNG) renders a short clip of rigid objects falling and bouncing
in a 2-D room, together with the exact frames of every *audible* collision and the exact optical flow.
A 64x64, 80-frame, 25 fps clip takes well under 150 ms on one CPU core.

Scene model
-----------
* A room whose walls, floor and ceiling are visible textured strips ``border * u`` thick along the image
  edges (``u = min(height, width)`` px) around a textured background (gradient, checker or value noise).
* 1-3 physical objects (textured discs and axis-aligned boxes; restitution 0.55-0.85 each, a pair uses
  the product) start in flight in the upper part of the room with random velocities and fall under
  gravity (falling ``u`` from rest takes ``fall_time`` = 0.6 s = 15 frames at 25 fps). They bounce off
  the walls, floor, ceiling and each other (impulses at the exact touching instant; 20 substeps per
  frame). Boxes never rotate; discs spin (visual only) and roll on what they rest on. A default clip has
  about 8 events on average (about 5 per lone object, 10 with two, 15 with three).
* All config lengths are fractions of ``u`` and all times are seconds, so a 112x112 clip of a seed is a
  scaled copy of its 64x64 clip (same physics, same events in frames, positions scaled by 112/64).
* Distractors never touch anything, so motion alone is not an event (default probability of each kind
  in brackets): sliding shapes at constant velocity (0.5), an orbiting shape (0.4), a sinusoidal camera
  pan (0.4), lighting flicker, smooth plus abrupt single-frame jumps (0.3), and sensor noise (0.7); see
  ``SceneConfig.*_prob``. Distractor shapes are sampled like the physical ones and drawn behind them.
  The pan moves the camera, not the physics: the whole world (room, background, every shape) shifts by
  ``pan[k]``, with ``|pan| < border`` so the walls and every contact point stay in view.
* Physics, appearance, distractors and pixel noise use independent child streams of the seed, so
  changing a distractor probability never changes the physics or the events of a seed.

Coordinates and units
---------------------
* Image pixels, x right and y down. Pixel (row i, col j) covers [j, j+1] x [i, i+1]; its CENTRE is at
  (j + 0.5, i + 0.5). So ``frames[k, int(y), int(x)]`` is the pixel containing point (x, y).
* Time in frames: frame k is the scene at t = k (seconds = t / fps).
* ``image = world - pan[k]``: world coordinates are the image coordinates at zero pan.
* Flow ``flow_fwd[k, i, j] = (u, v)``: the surface visible at the centre of pixel (i, j) in frame k is at
  that centre + (u, v) in frame k+1 (px; u along +x, v along +y). ``flow_bwd[k]`` is the same from frame
  k+1 back to frame k, at the pixels of frame k+1. "Visible" means the top-most surface whose interior
  contains the pixel centre (objects over distractors over the room); the room's flow is the pan
  displacement; a spinning disc's flow includes its rotation. The flow is exact (endpoint displacement
  of rigid motion between the two frames), so it can score optical-flow estimators.

Event definition
----------------
A ``CollisionEvent`` is the START of a contact (the two surfaces had not touched for at least half a
frame, so contact chatter counts once) whose normal relative approach speed exceeds the audibility
threshold ``audible_speed * u / fps`` (0.5 u/s = 1.28 px/frame at 64 px, 25 fps). Only such contacts
bounce. Slower contacts are perfectly inelastic and silent; resting and sustained contacts (an object
lying on the floor, a stack being pushed) are never events; silent contacts have friction, so objects
settle instead of micro-bouncing forever. ``time_frames`` is the exact instant the surfaces touch (free
flight is integrated exactly and each contact is traced back along the ballistic paths to the touching
instant, where the bounce is applied); ``frame = round(time_frames)``; ``x, y`` is the contact point in
image pixels at that instant (pan applied); ``objects`` names the pair, ``("disc0", "floor")``,
``("box1", "disc2")`` (objects are named kind + index, lower index first; surfaces are "floor",
"ceiling", "wall_left", "wall_right"); ``impact_speed`` is the approach speed in px/frame.

``generate.generate_with_labels`` also returns the per-pixel surface map used by the flow.
Quick look: ``from input_pipeline.synthetic.preview import save_preview;
save_preview(generate_video(0), "clip.png")``.

Generator v2 (``input_pipeline.synthetic.v2.generate_v2``; camera, lighting, blur, noise and codec in
``randomize``): the same physics and renderer under domain randomisation, at varied native sizes and frame
rates, with rods, rolling/sliding/resting floor bodies, occluders and hard negatives; see docs/synthetic.md.
Contact sheet of random samples: ``preview.save_contact_sheet("sheet.png", variant="v2")``.
"""

from input_pipeline.synthetic.distractors import DISTRACTOR_KINDS
from input_pipeline.synthetic.generate import generate_video, physics_constants
from input_pipeline.synthetic.scene import CollisionEvent, SceneConfig, SyntheticVideo, events_from_json, events_to_json

__all__ = [
    "SceneConfig",
    "CollisionEvent",
    "SyntheticVideo",
    "generate_video",
    "events_to_json",
    "events_from_json",
    "physics_constants",
    "DISTRACTOR_KINDS",
]
