/**
 * Structured logging to stderr, one line per event: `2026-11-23T10:00:00.000Z info switchboard:
 * job dispatched job_id=… supervisor_id=…`. Callers pass fields explicitly; nothing logs whole
 * request bodies or job parameters, which is how secret values stay out of logs.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(component: string): Logger;
}

/** A logger writing to stderr at or above `level` (default: `TML_LOG_LEVEL` or `info`). */
export function createLogger(component: string, level?: LogLevel): Logger {
  const threshold = LEVELS[level ?? envLevel()];
  const write = (lvl: LogLevel, message: string, fields?: LogFields) => {
    if (LEVELS[lvl] < threshold) return;
    console.error(formatLine(new Date(), lvl, component, message, fields));
  };
  return {
    debug: (message, fields) => write("debug", message, fields),
    info: (message, fields) => write("info", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    error: (message, fields) => write("error", message, fields),
    child: (sub) => createLogger(`${component}:${sub}`, level),
  };
}

function envLevel(): LogLevel {
  const value = Deno.env.get("TML_LOG_LEVEL");
  return value !== undefined && value in LEVELS ? value as LogLevel : "info";
}

function formatLine(
  at: Date,
  level: LogLevel,
  component: string,
  message: string,
  fields?: LogFields,
): string {
  let line = `${at.toISOString()} ${level} ${component}: ${message}`;
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (value === undefined) continue;
    const text = String(value);
    line += /[\s"=]/.test(text) ? ` ${key}=${JSON.stringify(text)}` : ` ${key}=${text}`;
  }
  return line;
}
