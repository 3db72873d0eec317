// A per-minute line chart drawn as SVG (no library): series share one y axis from 0 to the
// largest value (rounded up to a readable step), time on x from the first to the last minute.
import { h } from './ui.js';

const NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// The y axis' top and its number of divisions, so that the grid lines fall on round values
// (whole numbers whenever the top is 4 or more).
function niceScale(v) {
  if (v <= 0) return [4, 4];
  const p = 10 ** Math.floor(Math.log10(v));
  for (const [m, div] of [[1, 5], [2, 4], [4, 4], [5, 5], [10, 5]]) if (v <= m * p) return [m * p, div];
  return [10 * p, 5];
}

const clock = (iso) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString('en-GB', { hour12: false, hour: '2-digit', minute: '2-digit' });
};

// points: [{start, …values}], series: [{key, label}]. title: the chart's accessible name.
export function lineChart(title, points, series, { height = 200 } = {}) {
  const W = 1000, H = height, L = 48, R = 12, T = 10, B = 24;
  const [max, divisions] = niceScale(Math.max(0, ...points.flatMap((p) => series.map((se) => Number(p[se.key]) || 0))));
  const n = points.length;
  const x = (i) => L + (n <= 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
  svg.append(s('title', {}, title));
  for (let k = 0; k <= divisions; k++) {
    const v = (max * k) / divisions;
    svg.append(s('line', { class: k ? 'grid-line' : 'axis', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    svg.append(s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, Number.isInteger(v) ? v : v.toFixed(1)));
  }
  if (n) {
    const ticks = Math.min(n, 6);
    for (let k = 0; k < ticks; k++) {
      const i = ticks === 1 ? 0 : Math.round((k * (n - 1)) / (ticks - 1));
      svg.append(s('text', { x: x(i), y: H - 6, 'text-anchor': k === 0 ? 'start' : k === ticks - 1 ? 'end' : 'middle' }, clock(points[i].start)));
    }
  }
  // Drawn last first, so the first series (the main one) is on top; a series that is zero all
  // along is left out of the plot (it would hide the axis) but kept in the legend.
  [...series.entries()].reverse().forEach(([idx, se]) => {
    if (!points.some((p) => Number(p[se.key]))) return;
    const pts = points.map((p, i) => `${x(i).toFixed(1)},${y(Number(p[se.key]) || 0).toFixed(1)}`).join(' ');
    if (n === 1) svg.append(s('circle', { cx: x(0), cy: y(Number(points[0][se.key]) || 0), r: 3, class: `series s${idx + 1}` }));
    else if (n) svg.append(s('polyline', { points: pts, class: `series s${idx + 1}` }));
  });
  const totals = series.map((se) => points.reduce((a, p) => a + (Number(p[se.key]) || 0), 0));
  return h('figure.chart', { 'data-chart': title },
    svg,
    h('figcaption.legend', series.map((se, idx) => h('span', h('span.sw', { class: `s${idx + 1}`, 'aria-hidden': 'true' }), `${se.label}: ${totals[idx].toLocaleString('en-US')}`))));
}
