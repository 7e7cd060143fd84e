// The breast on a mammogram's stored values, measured once per image in the pixel worker: which values are tissue
// (the detector's background is the large group of values on the dark side of the display), the window those tissue
// values need (a "Full range" window spends most of the grey scale on the background and on burned-in markers), and
// the box the breast occupies (so that each view is fitted to the breast, not to the whole detector).
// Pure functions over a typed array, no DOM: unit-testable and usable in a worker.

const BINS = 1024;
const SAMPLES = 1_000_000; // a regular sample of about this many pixels is plenty for histograms and profiles
const LOW_PERCENTILE = 0.005;
const HIGH_PERCENTILE = 0.995;
const MIN_TISSUE = 0.02; // below this fraction (or above 1 - this) there is no background to leave out
const PROFILE_FLOOR = 0.05; // a row or column belongs to the breast when it holds 5 % of the fullest one's tissue
const GAP = 0.02; // gaps in a profile shorter than 2 % of the image join the parts around them
const PADDING = 0.02; // the box grows by 2 % of the image on each side
const HEADROOM = 0.2; // the window reaches 20 % of its width beyond the densest tissue (and 5 % below the faintest),
// so that tissue is not clipped to white: only what is denser than tissue (a clip, a calcification, a marker) is
const FOOTROOM = 0.05;

// Otsu's threshold over a histogram: the bin that best separates two groups of values.
function otsu(histogram) {
  let total = 0;
  let sum = 0;
  for (let i = 0; i < histogram.length; i++) {
    total += histogram[i];
    sum += i * histogram[i];
  }
  let below = 0;
  let belowSum = 0;
  let best = 0;
  let bestVariance = -1;
  for (let i = 0; i < histogram.length; i++) {
    below += histogram[i];
    if (!below) continue;
    const above = total - below;
    if (!above) break;
    belowSum += i * histogram[i];
    const meanBelow = belowSum / below;
    const meanAbove = (sum - belowSum) / above;
    const variance = below * above * (meanBelow - meanAbove) ** 2;
    if (variance > bestVariance) {
      bestVariance = variance;
      best = i;
    }
  }
  return best;
}

function percentile(histogram, count, fraction) {
  const target = fraction * count;
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i];
    if (seen >= target) return i;
  }
  return histogram.length - 1;
}

// The longest run of indices whose value reaches `floor`, gaps shorter than `gap` bridged: [first, last] or null.
function mainRun(profile, floor, gap) {
  let best = null;
  let start = -1;
  let last = -1;
  for (let i = 0; i <= profile.length; i++) {
    const on = i < profile.length && profile[i] >= floor;
    if (on) {
      if (start < 0 || i - last > gap) {
        if (start >= 0 && (!best || last - start > best[1] - best[0])) best = [start, last];
        start = i;
      }
      last = i;
    }
  }
  if (start >= 0 && (!best || last - start > best[1] - best[0])) best = [start, last];
  return best;
}

// { low, high } (stored values: the tissue's window), box { left, top, right, bottom } (stored pixel edges,
// right/bottom exclusive), tissueFraction. monochrome1: low stored values are displayed white (the breast).
export function measureBreast(pixels, rows, columns, { monochrome1 = false } = {}) {
  const step = Math.max(1, Math.floor(Math.sqrt((rows * columns) / SAMPLES)));
  let smallest = Infinity;
  let largest = -Infinity;
  for (let row = 0; row < rows; row += step) {
    const offset = row * columns;
    for (let column = 0; column < columns; column += step) {
      const value = pixels[offset + column];
      if (value < smallest) smallest = value;
      if (value > largest) largest = value;
    }
  }
  if (!(largest > smallest)) return null;
  const binOf = (value) => Math.min(BINS - 1, Math.floor(((value - smallest) / (largest - smallest)) * BINS));
  const histogram = new Float64Array(BINS);
  for (let row = 0; row < rows; row += step) {
    const offset = row * columns;
    for (let column = 0; column < columns; column += step) histogram[binOf(pixels[offset + column])] += 1;
  }
  const threshold = otsu(histogram);
  const isTissueBin = (bin) => (monochrome1 ? bin < threshold : bin > threshold);
  let tissue = 0;
  let all = 0;
  for (let bin = 0; bin < BINS; bin++) {
    all += histogram[bin];
    if (isTissueBin(bin)) tissue += histogram[bin];
  }
  let fraction = tissue / all;
  const everything = fraction < MIN_TISSUE || fraction > 1 - MIN_TISSUE;
  const inside = everything ? () => true : isTissueBin;
  if (everything) fraction = 1;

  // The box: the main run of rows and of columns holding tissue (a separate label or marker is left out).
  const rowProfile = new Float64Array(Math.ceil(rows / step));
  const columnProfile = new Float64Array(Math.ceil(columns / step));
  for (let row = 0, r = 0; row < rows; row += step, r++) {
    const offset = row * columns;
    for (let column = 0, c = 0; column < columns; column += step, c++) {
      if (inside(binOf(pixels[offset + column]))) {
        rowProfile[r] += 1;
        columnProfile[c] += 1;
      }
    }
  }
  const rowRun = mainRun(rowProfile, PROFILE_FLOOR * Math.max(...rowProfile), Math.ceil(GAP * rowProfile.length));
  const columnRun = mainRun(
    columnProfile,
    PROFILE_FLOOR * Math.max(...columnProfile),
    Math.ceil(GAP * columnProfile.length),
  );
  let box = { left: 0, top: 0, right: columns, bottom: rows };
  if (rowRun && columnRun && !everything) {
    const padRows = PADDING * rows;
    const padColumns = PADDING * columns;
    box = {
      left: Math.max(0, columnRun[0] * step - padColumns),
      top: Math.max(0, rowRun[0] * step - padRows),
      right: Math.min(columns, (columnRun[1] + 1) * step + padColumns),
      bottom: Math.min(rows, (rowRun[1] + 1) * step + padRows),
    };
  }

  // The window: the tissue values inside the box from their 0.5th to their 99.5th percentile, with some room on
  // either side (a marker outside the breast, or a clip in it, is not what the reader needs to see).
  const tissueHistogram = new Float64Array(BINS);
  let tissueCount = 0;
  const firstRow = Math.ceil(box.top / step) * step;
  const firstColumn = Math.ceil(box.left / step) * step;
  for (let row = firstRow; row < box.bottom; row += step) {
    const offset = row * columns;
    for (let column = firstColumn; column < box.right; column += step) {
      const bin = binOf(pixels[offset + column]);
      if (inside(bin)) {
        tissueHistogram[bin] += 1;
        tissueCount += 1;
      }
    }
  }
  const valueOf = (bin) => smallest + ((bin + 0.5) / BINS) * (largest - smallest);
  let low = tissueCount ? valueOf(percentile(tissueHistogram, tissueCount, LOW_PERCENTILE)) : smallest;
  let high = tissueCount ? valueOf(percentile(tissueHistogram, tissueCount, HIGH_PERCENTILE)) : largest;
  if (!(high > low)) [low, high] = [smallest, largest];
  const span = high - low;
  low = Math.max(smallest, low - FOOTROOM * span);
  high = Math.min(largest, high + HEADROOM * span);
  return { low, high, box, tissueFraction: fraction };
}
