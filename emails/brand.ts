import { createContext } from "react";
import { type Brand, brandOf } from "../src/branding";

/**
 * The deployment's brand (APP_NAME, APP_LOGO_URL, BRAND_COLOR), provided by renderEmail, so no template has to pass it
 * along: the same Brand and design tokens (src/branding.ts) as the hosted pages' stylesheet, in its light palette.
 * Apart from the layout, so the server can hold it without loading the React email components before a mail.
 */
export type { Brand };
export const BrandContext = createContext<Brand>(brandOf({ APP_NAME: "Auth", APP_LOGO_URL: undefined, BRAND_COLOR: undefined }));
