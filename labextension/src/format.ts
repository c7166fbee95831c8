/**
 * How the panel writes values, times, durations, cell ranges and errors.
 */
import * as api from './api';

export function formatValue(value: unknown): string {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : value.toPrecision(4).replace(/\.?0+$/, '');
  }
  if (value === undefined) {
    return '';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function formatTime(seconds: number | null): string {
  if (!seconds) {
    return '';
  }
  const date = new Date(seconds * 1000);
  return date.toLocaleString(undefined, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return '';
  }
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** `[1, 2, 3, 5]` → `1–3, 5`. */
export function cellRanges(numbers: number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < numbers.length) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j] + 1) {
      j++;
    }
    parts.push(j > i + 1 ? `${numbers[i]}–${numbers[j]}` : j === i + 1 ? `${numbers[i]}, ${numbers[j]}` : `${numbers[i]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

/**
 * A failed step's error in one line: its message, after the cell and line when the
 * message does not already start with them (the engine puts them in front when it knows).
 */
export function stepErrorText(error: api.StepError): string {
  if (error.cell === null || error.cell === undefined) {
    return error.message;
  }
  const where = `cell ${error.cell + 1}${error.line ? `, line ${error.line}` : ''}`;
  return error.message.startsWith(where) ? error.message : `${where}: ${error.message}`;
}

/** An error as the status line shows it: the server's message and hint, or the text. */
export function describe(error: unknown): string {
  return error instanceof api.ApiError ? error.describe() : String(error);
}
