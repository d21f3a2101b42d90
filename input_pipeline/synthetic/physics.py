"""2-D rigid-body simulation of discs and axis-aligned boxes in a walled room, with exact contact events.

World coordinates are pixels (x right, y down) of the image at zero camera pan; time is in frames
(frame k at t = k). The room interior is ``room = (x0, y0, x1, y1)``: walls at x0/x1, ceiling y0, floor y1.

Free flight is integrated exactly (constant gravity) in ``substeps`` steps per frame. A contact found at
the end of a substep is traced back along the exact ballistic paths to the instant the surfaces first
touched; an audible contact is bounced there (impulse with restitution) and the bodies fly on for the rest
of the substep, so event times, contact points and bounces are exact for isolated impacts. Silent
contacts get an inelastic impulse plus positional correction, with a few sequential passes so stacks
stay still.

Event rule: a contact is *audible* when it *starts* (the pair has not touched for at least half a frame,
so contact chatter within one frame is one event) with a normal approach speed above ``audible``
(px/frame). Only audible contacts bounce; every other contact (slow landings, resting, pushes through a
stack) is perfectly inelastic and silent, so bodies settle instead of micro-bouncing forever, and silent
contacts get Coulomb friction so resting bodies stop. Disc spin is visual only: it never changes the
translational motion. Bodies lying still on the floor are frozen ("asleep") until touched, which gives
the same trajectory at a fraction of the cost.
"""

from __future__ import annotations

import math

import numpy as np

from input_pipeline.synthetic.bodies import WALLS, Body, Contact, Trajectory, sample_bodies

__all__ = ["Body", "Contact", "Trajectory", "WALLS", "sample_bodies", "simulate"]  # bodies.py's re-exported


def _pair_geometry(a: Body, b: Body, ax, ay, bx, by, eps, dt=0.0, x_face=None):
    """Contact of a with b at the given centres: (nx, ny, penetration, px, py) with n from b to a, or None
    if separated by more than ``eps``. Penetration < 0 means a gap smaller than eps. For two boxes the face
    is chosen from the motion over the last ``dt`` frames, or forced with ``x_face``."""
    dx, dy = ax - bx, ay - by
    if abs(dx) > a.hx + b.hx + eps or abs(dy) > a.hy + b.hy + eps:
        return None
    if a.is_disc and b.is_disc:
        rsum = a.hx + b.hx
        d = math.hypot(dx, dy)
        if d > rsum + eps:
            return None
        nx, ny = (dx / d, dy / d) if d > 1e-9 else (0.0, -1.0)
        return nx, ny, rsum - d, ax - a.hx * nx, ay - a.hx * ny
    if not a.is_disc and not b.is_disc:
        ox, oy = a.hx + b.hx - abs(dx), a.hy + b.hy - abs(dy)
        if x_face is None and min(ox, oy) <= eps:
            x_face = ox <= oy  # merely touching along one axis (side by side, or resting on top)
        if x_face is None:
            # The contact face is the axis along which the boxes were apart a substep ago (the smaller
            # overlap alone picks the wrong face near corners); if both were, the one that closed last.
            ox_prev = a.hx + b.hx - abs(dx - (a.vx - b.vx) * dt)
            oy_prev = a.hy + b.hy - abs(dy - (a.vy - b.vy) * dt)
            apart_x, apart_y = ox_prev <= eps, oy_prev <= eps
            if apart_x != apart_y:
                x_face = apart_x
            elif apart_x:
                x_face = ox * (oy - oy_prev) < oy * (ox - ox_prev)
            else:
                x_face = ox < oy
        if x_face:
            nx = 1.0 if dx >= 0 else -1.0
            lo, hi = max(ay - a.hy, by - b.hy), min(ay + a.hy, by + b.hy)
            return nx, 0.0, ox, bx + nx * b.hx, 0.5 * (lo + hi)
        ny = 1.0 if dy >= 0 else -1.0
        lo, hi = max(ax - a.hx, bx - b.hx), min(ax + a.hx, bx + b.hx)
        return 0.0, ny, oy, 0.5 * (lo + hi), by + ny * b.hy
    # Disc against box: the closest point of the box to the disc centre.
    flip = not a.is_disc
    disc, box = (b, a) if flip else (a, b)
    cx, cy, qx0, qy0 = (bx, by, ax, ay) if flip else (ax, ay, bx, by)
    qx = min(max(cx, qx0 - box.hx), qx0 + box.hx)
    qy = min(max(cy, qy0 - box.hy), qy0 + box.hy)
    ddx, ddy = cx - qx, cy - qy
    d = math.hypot(ddx, ddy)
    if d > disc.hx + eps:
        return None
    if d > 1e-9:
        nx, ny, pen = ddx / d, ddy / d, disc.hx - d
    else:  # centre inside the box (only after a deep overlap): push out along the shallowest axis
        ox, oy = box.hx - abs(cx - qx0), box.hy - abs(cy - qy0)
        if ox < oy:
            nx, ny, pen = (1.0 if cx >= qx0 else -1.0), 0.0, ox + disc.hx
        else:
            nx, ny, pen = 0.0, (1.0 if cy >= qy0 else -1.0), oy + disc.hx
    return (-nx, -ny, pen, qx, qy) if flip else (nx, ny, pen, qx, qy)


class _Sim:
    def __init__(self, bodies, room, gravity, audible, substeps, eps):
        self.bodies, self.room = bodies, room
        self.g, self.audible, self.dt, self.eps = gravity, audible, 1.0 / substeps, eps
        self.last_touch: dict = {}  # pair key -> end time of the last substep it was touching
        self.rearm = max(0.5, 1.5 * self.dt)
        self.events: list[Contact] = []

    def _drift(self, b: Body, tau: float) -> None:
        """Move ``b`` ballistically by ``tau`` frames (negative: back in time). Exact under gravity."""
        b.x += b.vx * tau
        b.y += b.vy * tau + 0.5 * self.g * tau * tau
        b.vy += self.g * tau

    def _time_since_touch(self, a, b, nx, ny, pen, approach):
        """How long before the end of the substep the surfaces first touched (exact for ballistic motion)."""
        if pen <= 0.0:
            return 0.0
        if b is None:
            # Against a wall the approach speed changes with gravity: pen = approach*tau + g*ny*tau^2/2.
            disc = approach * approach + 2.0 * self.g * ny * pen
            tau = 2.0 * pen / (approach + math.sqrt(max(disc, 0.0)))
        elif a.is_disc and b.is_disc:
            # Relative motion is linear (same gravity): solve |d - rv tau| = r_a + r_b.
            dx, dy = a.x - b.x, a.y - b.y
            rvx, rvy = a.vx - b.vx, a.vy - b.vy
            rv2 = rvx * rvx + rvy * rvy
            dr = dx * rvx + dy * rvy
            rr = a.hx + b.hx
            disc = dr * dr - rv2 * (dx * dx + dy * dy - rr * rr)
            tau = (dr + math.sqrt(max(disc, 0.0))) / rv2 if rv2 > 0 else 0.0
        else:
            tau = pen / approach  # flat faces: the gap closes linearly (corner hits: tiny error)
        return min(max(tau, 0.0), self.dt)

    def _contact(self, i, j, key, nx, ny, pen, t_end, touching, hit):
        rearmed = key not in hit and t_end - self.last_touch.get(key, -math.inf) > self.rearm
        if pen <= 0.0 and rearmed:
            return  # a gap below eps only keeps an existing contact alive; new contacts must really touch
        touching.add(key)
        a = self.bodies[i]
        b = self.bodies[j] if j is not None else None
        ima, imb = a.inv_mass, (b.inv_mass if b is not None else 0.0)
        vn = (a.vx - (b.vx if b is not None else 0.0)) * nx + (a.vy - (b.vy if b is not None else 0.0)) * ny
        if vn >= 0.0:
            if pen > 0.0:
                self._separate(a, b, nx, ny, pen)
            return
        tau = 0.0
        bounce = False
        if rearmed:
            tau = self._time_since_touch(a, b, nx, ny, pen, -vn)
            approach = -vn + (self.g * ny * tau if b is None else 0.0)  # approach speed at first touch
            bounce = approach > self.audible
        if bounce:
            # Rewind to the touching instant, bounce there, then fly on for the rest of the substep: the
            # bounce is then exact (no energy lost or gained to the substep grid, no positional fix-up).
            self._drift(a, -tau)
            if b is not None:
                self._drift(b, -tau)
            va0 = (a.vx, a.vy)
            vb0 = (b.vx, b.vy) if b is not None else None
            bvx, bvy = vb0 if b is not None else (0.0, 0.0)
            approach = -((a.vx - bvx) * nx + (a.vy - bvy) * ny)
            e = a.restitution * b.restitution if b is not None else a.restitution
            self._impulse(a, b, nx, ny, (1.0 + e) * approach / (ima + imb))
            self._spin(a, b, nx, ny, 0.3)
            hit.add(key)
            self._record(i, j, key, nx, ny, approach, t_end - tau, va0, vb0)
            self._drift(a, tau)
            if b is not None:
                self._drift(b, tau)
            return
        # Silent contact: perfectly inelastic, with Coulomb friction so resting bodies stop.
        jn = -vn / (ima + imb)
        self._impulse(a, b, nx, ny, jn)
        tx, ty = ny, -nx
        mu = min(a.friction, b.friction) if b is not None else a.friction
        vt = (a.vx - (b.vx if b is not None else 0.0)) * tx + (a.vy - (b.vy if b is not None else 0.0)) * ty
        self._impulse(a, b, tx, ty, max(-mu * jn, min(mu * jn, -vt / (ima + imb))))
        self._spin(a, b, nx, ny, 1.0 if b is None else 0.3)
        if pen > 0.0:
            self._separate(a, b, nx, ny, pen)

    @staticmethod
    def _impulse(a, b, nx, ny, j):
        a.vx += j * a.inv_mass * nx
        a.vy += j * a.inv_mass * ny
        if b is not None:
            b.vx -= j * b.inv_mass * nx
            b.vy -= j * b.inv_mass * ny

    @staticmethod
    def _separate(a, b, nx, ny, pen):
        s = pen / (a.inv_mass + (b.inv_mass if b is not None else 0.0))
        a.x += s * a.inv_mass * nx
        a.y += s * a.inv_mass * ny
        if b is not None:
            b.x -= s * b.inv_mass * nx
            b.y -= s * b.inv_mass * ny

    @staticmethod
    def _spin(a, b, nx, ny, k):
        """Visual spin: pull discs a fraction k of the way to rolling without slipping on the contact."""
        tx, ty = ny, -nx
        rvt = (a.vx - (b.vx if b is not None else 0.0)) * tx + (a.vy - (b.vy if b is not None else 0.0)) * ty
        if a.is_disc:
            a.omega += k * (-rvt / a.hx - a.omega)
        if b is not None and b.is_disc:
            b.omega += k * (-rvt / b.hx - b.omega)

    def _record(self, i, j, key, nx, ny, approach, time, va0, vb0):
        a = self.bodies[i]  # a (and b) are at their touching-instant positions
        x0, y0, x1, y1 = self.room
        if j is None:
            px, py = {"wall_left": (x0, a.y), "wall_right": (x1, a.y), "ceiling": (a.x, y0), "floor": (a.x, y1)}[key[1]]
            other, vb_after = key[1], None
        else:
            b = self.bodies[j]
            geo = _pair_geometry(a, b, a.x, a.y, b.x, b.y, math.inf, x_face=abs(nx) > abs(ny))
            px, py = geo[3], geo[4]
            other, vb_after = j, (b.vx, b.vy)
        self.events.append(Contact(time, px, py, i, other, approach, (nx, ny), va0, (a.vx, a.vy), vb0, vb_after))

    def step(self, t_end):
        x0, y0, x1, y1 = self.room
        dt, eps, bodies = self.dt, self.eps, self.bodies
        for b in bodies:
            if not b.asleep:
                self._drift(b, dt)
                b.angle += b.omega * dt
        touching: set = set()
        hit: set = set()
        n = len(bodies)
        for _ in range(3):
            found = False  # only body-body contacts need further passes (walls are resolved exactly)
            for i, b in enumerate(bodies):
                if b.asleep:
                    continue
                pen = x0 - (b.x - b.hx)
                if pen > -eps:
                    self._contact(i, None, (i, "wall_left"), 1.0, 0.0, pen, t_end, touching, hit)
                pen = (b.x + b.hx) - x1
                if pen > -eps:
                    self._contact(i, None, (i, "wall_right"), -1.0, 0.0, pen, t_end, touching, hit)
                pen = y0 - (b.y - b.hy)
                if pen > -eps:
                    self._contact(i, None, (i, "ceiling"), 0.0, 1.0, pen, t_end, touching, hit)
                pen = (b.y + b.hy) - y1
                if pen > -eps:
                    self._contact(i, None, (i, "floor"), 0.0, -1.0, pen, t_end, touching, hit)
            for i in range(n):
                a = bodies[i]
                for j in range(i + 1, n):
                    b = bodies[j]
                    if a.asleep and b.asleep:
                        continue
                    geo = _pair_geometry(a, b, a.x, a.y, b.x, b.y, eps, dt)
                    if geo is not None:
                        found = True
                        a.asleep = b.asleep = False
                        self._contact(i, j, (i, j), geo[0], geo[1], geo[2], t_end, touching, hit)
            if not found:
                break
        # Body-body corrections of the last pass can push a body into a wall: the room always wins.
        for b in bodies:
            if b.x - b.hx < x0 or b.x + b.hx > x1:
                b.x = min(max(b.x, x0 + b.hx), x1 - b.hx)
                b.vx = max(b.vx, 0.0) if b.x - b.hx <= x0 else min(b.vx, 0.0)
            if b.y - b.hy < y0 or b.y + b.hy > y1:
                b.y = min(max(b.y, y0 + b.hy), y1 - b.hy)
                b.vy = max(b.vy, 0.0) if b.y - b.hy <= y0 else min(b.vy, 0.0)
        # Sleeping: a body lying still on the floor and touching only the room would be put back exactly
        # where it is every substep, so it is frozen (same result, far cheaper) until another body touches it.
        in_pair = {k for key in touching if not isinstance(key[1], str) for k in key}
        for i, b in enumerate(bodies):
            if b.asleep:
                touching.add((i, "floor"))
            elif (
                abs(b.vx) < 1e-9
                and abs(b.vy) < 1e-9
                and (i, "floor") in touching
                and i not in in_pair
                and abs(b.y + b.hy - y1) < 1e-9
            ):
                b.asleep = True
                b.vx = b.vy = b.omega = 0.0
                b.y = y1 - b.hy
        for key in touching:
            self.last_touch[key] = t_end


def simulate(
    bodies: list[Body], room, num_frames: int, gravity: float, audible: float, substeps: int = 20
) -> Trajectory:
    """Run the bodies (mutated in place) from t = 0 to t = num_frames - 1.

    gravity: px/frame^2 (+y); audible: px/frame. Returns per-frame states and the audible contacts.
    """
    scale = max(room[2] - room[0], room[3] - room[1])
    sim = _Sim(bodies, room, gravity, audible, substeps, eps=1e-4 * scale)
    nb = len(bodies)
    pos = np.zeros((num_frames, nb, 2))
    vel = np.zeros((num_frames, nb, 2))
    ang = np.zeros((num_frames, nb))

    def record(k):
        for i, b in enumerate(bodies):
            pos[k, i] = (b.x, b.y)
            vel[k, i] = (b.vx, b.vy)
            ang[k, i] = b.angle

    record(0)
    for k in range(num_frames - 1):
        for s in range(substeps):
            sim.step(k + (s + 1) / substeps)
        record(k + 1)
    events = sorted(sim.events, key=lambda c: c.time)
    return Trajectory(pos, vel, ang, events)
