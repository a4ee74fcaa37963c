// How figures and instants read on the page: ratios as percent with one decimal, counts with
// thousands separators, durations in h/min/s, instants in the line's calendar time zone.

export const NONE = "—"; // undefined (null in the API), never shown as 0

export function pct(x) {
  return x === null || x === undefined ? NONE : `${(x * 100).toFixed(1)} %`;
}

export function count(n) {
  return n === null || n === undefined ? NONE : n.toLocaleString("en-GB");
}

export function rate(x) {
  return x === null || x === undefined
    ? NONE
    : x.toLocaleString("en-GB", { maximumFractionDigits: 1 });
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return NONE;
  let s = Math.round(seconds);
  if (s === 0) return "0 s";
  const parts = [];
  const days = Math.floor(s / 86400);
  s -= days * 86400;
  const hours = Math.floor(s / 3600);
  s -= hours * 3600;
  const minutes = Math.floor(s / 60);
  s -= minutes * 60;
  if (days) parts.push(`${days} d`);
  if (hours) parts.push(`${hours} h`);
  if (minutes) parts.push(`${minutes} min`);
  if (s) parts.push(`${s} s`);
  return parts.join(" ");
}

const formats = new Map();

function formatter(tz, options) {
  const key = `${tz}|${JSON.stringify(options)}`;
  if (!formats.has(key)) {
    formats.set(key, new Intl.DateTimeFormat("en-GB", { timeZone: tz, hourCycle: "h23", ...options }));
  }
  return formats.get(key);
}

function parts(date, tz) {
  const fields = formatter(tz, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(date);
  return Object.fromEntries(fields.map((p) => [p.type, p.value]));
}

export function clock(iso, tz) {
  return formatter(tz, { hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
}

export function day(iso, tz) {
  return formatter(tz, { weekday: "short", day: "2-digit", month: "short" }).format(new Date(iso));
}

export function sameDay(a, b, tz) {
  return day(a, tz) === day(b, tz);
}

// "Mon 02 Mar 07:00 – 15:00", or with both dates when the window spans days.
export function span(start, end, tz) {
  const first = `${day(start, tz)} ${clock(start, tz)}`;
  const endsAtMidnight = clock(end, tz) === "00:00";
  if (sameDay(start, end, tz) || (endsAtMidnight && (new Date(end) - new Date(start)) <= 86400000)) {
    return `${first} – ${endsAtMidnight ? "24:00" : clock(end, tz)}`;
  }
  return `${first} – ${day(end, tz)} ${clock(end, tz)}`;
}

// "15:00" on the reference's local day, else "Fri 27 Feb 15:00".
export function when(iso, reference, tz) {
  return sameDay(iso, reference, tz) ? clock(iso, tz) : `${day(iso, tz)} ${clock(iso, tz)}`;
}

// <input type="datetime-local"> text in the zone <-> UTC ISO instants.
export function toLocalInput(iso, tz) {
  const f = parts(new Date(iso), tz);
  return `${f.year}-${f.month}-${f.day}T${f.hour}:${f.minute}`;
}

function offsetMs(instantMs, tz) {
  const f = parts(new Date(instantMs), tz);
  const wall = Date.UTC(+f.year, +f.month - 1, +f.day, +f.hour, +f.minute, +f.second);
  return wall - Math.floor(instantMs / 1000) * 1000;
}

export function fromLocalInput(text, tz) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(text);
  if (!m) return null;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  let t = wall - offsetMs(wall, tz);
  t = wall - offsetMs(t, tz); // once more: the offset at the instant itself (DST edges)
  return new Date(t).toISOString().replace(".000Z", "Z");
}
