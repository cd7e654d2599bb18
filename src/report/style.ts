/** The report's only stylesheet; its hash goes into the page's Content-Security-Policy. */
export const REPORT_CSS = `
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f; margin: 0; background: #fafafa; }
header, main, footer { max-width: 1100px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 36px; }
h3 { font-size: 16px; margin-top: 20px; }
.lead { color: #555; margin: 0 0 8px; }
nav a { margin-right: 10px; font-size: 14px; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13px; background: #fff; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #f0f0f3; }
tbody th { font-weight: 600; }
figure { margin: 16px 0; background: #fff; border: 1px solid #e4e4e7; padding: 12px; display: inline-block; max-width: 100%; overflow-x: auto; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 13px; color: #555; margin-top: 6px; }
.note { font-size: 13px; color: #555; }
.missing-note { color: #8a4b00; background: #fff6e5; border-left: 3px solid #e0a030; padding: 6px 10px; }
section.missing h2 { color: #888; }
.sample { background: #fff; border: 1px solid #e4e4e7; padding: 8px 12px; margin: 10px 0; }
.sample .meta { font-size: 13px; color: #555; margin: 0 0 6px; }
.sample .label { font-size: 12px; text-transform: uppercase; color: #777; margin: 6px 0 2px; }
pre { white-space: pre-wrap; word-break: break-word; background: #f6f6f8; padding: 8px; margin: 0; font-size: 13px; max-height: 320px; overflow: auto; }
code { font-size: 13px; background: #f0f0f3; padding: 0 3px; }
footer { color: #777; font-size: 13px; padding-bottom: 24px; }
`;
