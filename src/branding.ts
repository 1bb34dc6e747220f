import type { Config } from "./config";

/**
 * The one set of design tokens: the hosted pages' stylesheet is built from it, and so can the emails be. A deployment
 * brands both with APP_NAME, APP_LOGO_URL and BRAND_COLOR.
 */
export type Brand = { name: string; logoUrl: string | undefined; color: string };

export const DEFAULT_BRAND_COLOR = "#4f46e5";

export const designTokens = {
  font: "-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, sans-serif",
  mono: "ui-monospace, Menlo, Consolas, monospace",
  radius: "8px",
  light: { background: "#f6f6f7", surface: "#ffffff", text: "#16161a", muted: "#5b5b66", border: "#d9d9de", error: "#b42318", success: "#067647" },
  dark: { background: "#111114", surface: "#1c1c21", text: "#ececf1", muted: "#a0a0ab", border: "#3a3a42", error: "#f97066", success: "#47cd89" },
} as const;

export function brandOf(config: Pick<Config, "APP_NAME" | "APP_LOGO_URL" | "BRAND_COLOR">): Brand {
  return { name: config.APP_NAME, logoUrl: config.APP_LOGO_URL, color: config.BRAND_COLOR ?? DEFAULT_BRAND_COLOR };
}

/** Black or white, whichever reads better on the brand colour (WCAG relative luminance). */
export function textOn(hex: string): "#000000" | "#ffffff" {
  const full = hex.length === 4 ? `#${[...hex.slice(1)].map((c) => c + c).join("")}` : hex;
  const channel = (i: number) => {
    const v = Number.parseInt(full.slice(i, i + 2), 16) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
  return luminance > 0.4 ? "#000000" : "#ffffff";
}
