import { type Brand, designTokens as t, textOn } from "../src/branding";

/** The pages' one stylesheet, served from this server (the CSP allows no inline style): tokens, light and dark. */
export function stylesheet(brand: Brand): string {
  const palette = (p: (typeof t)["light"] | (typeof t)["dark"]) =>
    `--bg:${p.background};--surface:${p.surface};--text:${p.text};--muted:${p.muted};--border:${p.border};--error:${p.error};--success:${p.success};`;
  return `:root{color-scheme:light dark;--brand:${brand.color};--on-brand:${textOn(brand.color)};--radius:${t.radius};${palette(t.light)}}
@media (prefers-color-scheme:dark){:root{${palette(t.dark)}}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font:16px/1.5 ${t.font}}
main{max-width:440px;margin:48px auto;padding:32px;background:var(--surface);border:1px solid var(--border);border-radius:var(--radius)}
main.wide{max-width:720px}
header.brand{display:flex;align-items:center;gap:12px;margin-bottom:24px;font-weight:600;font-size:18px}
header.brand img{height:32px;width:auto}
h1{font-size:22px;margin:0 0 16px}
h2{font-size:17px;margin:28px 0 12px}
form{margin:0 0 8px}
.field{margin:0 0 16px}
label{display:block;font-weight:500;margin-bottom:4px}
input{width:100%;padding:10px 12px;font:inherit;color:var(--text);background:var(--surface);border:1px solid var(--border);border-radius:6px}
input:focus-visible,button:focus-visible,a:focus-visible{outline:3px solid var(--brand);outline-offset:2px}
input[aria-invalid=true]{border-color:var(--error)}
.error{color:var(--error);font-size:14px;margin:4px 0 0}
.alert{border:1px solid var(--error);color:var(--error);border-radius:6px;padding:10px 12px;margin:0 0 16px}
.notice{border:1px solid var(--success);color:var(--success);border-radius:6px;padding:10px 12px;margin:0 0 16px}
button{font:inherit;font-weight:600;padding:10px 16px;border-radius:6px;border:1px solid var(--brand);background:var(--brand);color:var(--on-brand);cursor:pointer}
button.secondary{background:transparent;color:var(--text);border-color:var(--border)}
button.danger{background:transparent;color:var(--error);border-color:var(--error)}
button.block,a.button.block{width:100%}
a.button{display:inline-block;text-align:center;text-decoration:none;font-weight:600;padding:10px 16px;border-radius:6px;border:1px solid var(--border);color:var(--text)}
.providers{display:grid;gap:8px;margin:0 0 12px}
.or{text-align:center;color:var(--muted);font-size:14px;margin:12px 0}
form.inline{display:inline;margin:0}
[hidden]{display:none!important}
ul.items{list-style:none;padding:0;margin:0 0 12px}
ul.items>li{border-bottom:1px solid var(--border);padding:8px 0}
ul.codes{columns:2;font-family:${t.mono};list-style:none;padding:0}
code{font-family:${t.mono};word-break:break-all}
.qr img{background:#fff;padding:8px;border-radius:6px}
.row.end{align-items:flex-end}.row.end>.field{margin-bottom:0}.row.between{justify-content:space-between;align-items:center}
a{color:var(--brand)}
@media (prefers-color-scheme:dark){a{color:color-mix(in srgb,var(--brand) 60%,#fff)}}
.links{display:flex;justify-content:space-between;gap:12px;margin-top:16px;font-size:14px}
.muted{color:var(--muted);font-size:14px}
table{width:100%;border-collapse:collapse;font-size:14px}
th,td{text-align:left;padding:8px 6px;border-bottom:1px solid var(--border);vertical-align:top}
.row{display:flex;gap:12px}.row>.field{flex:1}
`;
}
