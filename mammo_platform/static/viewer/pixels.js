// Pixel data for Cornerstone3D: a "mammo:<image id>" image loader that fetches the platform's viewer pixels
// (imaging/viewer_pixels.py: stored values at full resolution and bit depth, gzip on the wire, which the browser
// inflates natively) from the access-checked, audited image endpoint, and the metadata provider Cornerstone asks
// for the image's geometry, pixel format, Modality LUT and VOI windows.

import { imageLoader, metaData, utilities } from "../vendor/cornerstone3d/cornerstone3d.min.js";
import { fetchPixels } from "./fetcher.js";

const SCHEME = "mammo";

const imagesById = new Map(); // image id -> the image's entry from the viewer configuration
const modules = new Map(); // imageId -> { module name -> metadata }
const measured = new Map(); // imageId -> "left" | "right" | null: the chest-wall side seen on the pixels

export function imageIdOf(image) {
  return `${SCHEME}:${image.id}`;
}

export function measuredChestWall(image) {
  return measured.get(imageIdOf(image)) ?? null;
}

function describe(image, unpacked) {
  const bits = unpacked.width * 8;
  const voi = image.voi && image.voi.length ? image.voi[0] : null;
  return {
    imagePlaneModule: {
      // One world unit per pixel: world (x, y) is (column, row) of a pixel centre, which keeps marks simple.
      rows: unpacked.rows,
      columns: unpacked.columns,
      pixelSpacing: [1, 1],
      rowPixelSpacing: 1,
      columnPixelSpacing: 1,
      imageOrientationPatient: [1, 0, 0, 0, 1, 0],
      rowCosines: [1, 0, 0],
      columnCosines: [0, 1, 0],
      imagePositionPatient: [0, 0, 0],
      frameOfReferenceUID: `mammo-frame-${image.id}`,
      usingDefaultValues: true,
    },
    imagePixelModule: {
      samplesPerPixel: 1,
      photometricInterpretation: image.photometric || "MONOCHROME2",
      rows: unpacked.rows,
      columns: unpacked.columns,
      bitsAllocated: bits,
      bitsStored: bits,
      highBit: bits - 1,
      pixelRepresentation: unpacked.signed ? 1 : 0,
    },
    generalSeriesModule: { modality: "MG", seriesInstanceUID: `mammo-series-${image.id}` },
    generalImageModule: {},
    modalityLutModule: { rescaleSlope: image.slope ?? 1, rescaleIntercept: image.intercept ?? 0 },
    voiLutModule: voi ? { windowCenter: [voi.center], windowWidth: [voi.width] } : {},
  };
}

function toCornerstoneImage(imageId, image, unpacked) {
  const { rows, columns, pixels } = unpacked;
  const slope = image.slope ?? 1;
  const intercept = image.intercept ?? 0;
  const preset = defaultWindow(image, unpacked);
  return {
    imageId,
    dataType: pixels.constructor.name,
    color: false,
    rgba: false,
    numberOfComponents: 1,
    rows,
    columns,
    height: rows,
    width: columns,
    rowPixelSpacing: 1,
    columnPixelSpacing: 1,
    slope,
    intercept,
    invert: image.photometric === "MONOCHROME1",
    minPixelValue: unpacked.smallest,
    maxPixelValue: unpacked.largest,
    windowCenter: preset.center,
    windowWidth: preset.width,
    sizeInBytes: pixels.byteLength,
    calibration: {},
    getPixelData: () => pixels,
    getCanvas: undefined,
    voxelManager: utilities.VoxelManager.createImageVoxelManager({
      scalarData: pixels,
      width: columns,
      height: rows,
      numberOfComponents: 1,
    }),
  };
}

// The image's own (first DICOM) window, else the window of the breast's values, else the full range.
function defaultWindow(image, unpacked) {
  if (image.voi && image.voi.length) return { center: image.voi[0].center, width: image.voi[0].width };
  if (image.breast) return fullRangeWindow(image, image.breast.low, image.breast.high);
  return fullRangeWindow(image, unpacked.smallest, unpacked.largest);
}

export function fullRangeWindow(image, smallest, largest) {
  const slope = image.slope ?? 1;
  const intercept = image.intercept ?? 0;
  const a = smallest * slope + intercept;
  const b = largest * slope + intercept;
  const low = Math.min(a, b);
  const high = Math.max(a, b);
  return { center: (low + high) / 2, width: Math.max(1, high - low) };
}

const bytesByImage = new Map(); // imageId -> compressed bytes that crossed the network
export const timings = []; // { image, download, unpack } in ms, per loaded image

async function load(imageId) {
  const image = imagesById.get(Number(imageId.slice(SCHEME.length + 1)));
  if (!image) throw new Error(`No image ${imageId} in this viewer.`);
  const { unpacked, chestWall, breast, bytes, ms } = await fetchPixels(image.pixelsUrl, {
    monochrome1: image.photometric === "MONOCHROME1",
  });
  if (unpacked.rows !== image.rows || unpacked.columns !== image.columns) {
    throw new Error("The viewer pixels do not have the size recorded for this image.");
  }
  image.range = { smallest: unpacked.smallest, largest: unpacked.largest };
  image.breast = breast; // { low, high, box } in stored values and stored pixels, or null (breast.js)
  modules.set(imageId, describe(image, unpacked));
  measured.set(imageId, chestWall);
  bytesByImage.set(imageId, bytes);
  timings.push({ image: image.id, ...ms });
  return toCornerstoneImage(imageId, image, unpacked);
}

export function registerPixelSource(images) {
  for (const image of images) imagesById.set(image.id, image);
  if (registerPixelSource.done) return;
  registerPixelSource.done = true;
  imageLoader.registerImageLoader(SCHEME, (imageId) => ({ promise: load(imageId), cancelFn: undefined }));
  metaData.addProvider((type, imageId) => {
    if (typeof imageId !== "string" || !imageId.startsWith(`${SCHEME}:`)) return undefined;
    return modules.get(imageId)?.[type];
  }, 10000);
}

// Load an image (or take it from Cornerstone's cache): hanging.js needs its pixels to decide the flips.
export function loadImage(image) {
  return imageLoader.loadAndCacheImage(imageIdOf(image));
}

export function preload(images) {
  return Promise.all(images.map(loadImage));
}

// Bytes that crossed the network for the images' pixels (compressed), from the worker's Resource Timing.
export function transferredBytes(images) {
  return images.reduce((sum, image) => sum + (bytesByImage.get(imageIdOf(image)) || 0), 0);
}
