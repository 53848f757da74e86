// media.js -- which chat type a file is sent as, what a received body is
// (from its first bytes, as chat-client's listen does), and sizes for people.

import { PICTURE, VOICE, VIDEO } from './proto.js';

const EXT_TYPES = {
  png: PICTURE, jpg: PICTURE, jpeg: PICTURE, gif: PICTURE, webp: PICTURE, bmp: PICTURE, svg: PICTURE, avif: PICTURE,
  mp3: VOICE, wav: VOICE, ogg: VOICE, oga: VOICE, opus: VOICE, m4a: VOICE, aac: VOICE, flac: VOICE, weba: VOICE,
  mp4: VIDEO, webm: VIDEO, mkv: VIDEO, mov: VIDEO, m4v: VIDEO, ogv: VIDEO,
};

export const TYPE_NAMES = { 1: 'text', 2: 'picture', 3: 'voice', 4: 'video' };

// PICTURE, VOICE or VIDEO for a File, from its MIME type or else its
// extension; 0 when it is none of them.
export function typeOfFile(file) {
  const major = (file.type || '').split('/')[0];
  if (major === 'image') return PICTURE;
  if (major === 'audio') return VOICE;
  if (major === 'video') return VIDEO;
  const ext = (file.name || '').split('.').pop().toLowerCase();
  return EXT_TYPES[ext] || 0;
}

function startsWith(b, sig, at = 0) {
  if (b.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
}

const ascii = (s) => Array.from(s, (c) => c.charCodeAt(0));

// The MIME type of a received body from its first bytes, else a generic
// one for its chat type (the browser sniffs media itself).
export function sniffMime(bytes, type) {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47])) return 'image/png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(bytes, ascii('GIF8'))) return 'image/gif';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'image/webp';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WAVE'), 8)) return 'audio/wav';
  if (startsWith(bytes, ascii('BM'))) return 'image/bmp';
  if (startsWith(bytes, ascii('ID3')) || startsWith(bytes, [0xff, 0xfb])) return 'audio/mpeg';
  if (startsWith(bytes, ascii('OggS'))) return type === VIDEO ? 'video/ogg' : 'audio/ogg';
  if (startsWith(bytes, ascii('fLaC'))) return 'audio/flac';
  if (startsWith(bytes, ascii('ftyp'), 4)) return type === VOICE ? 'audio/mp4' : 'video/mp4';
  if (startsWith(bytes, [0x1a, 0x45, 0xdf, 0xa3])) return type === VOICE ? 'audio/webm' : 'video/webm';
  return { [PICTURE]: 'image/*', [VOICE]: 'audio/*', [VIDEO]: 'video/*' }[type] || 'application/octet-stream';
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KiB`;
  return `${(n / 1048576).toFixed(n < 10485760 ? 1 : 0)} MiB`;
}
