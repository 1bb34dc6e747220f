import { Body } from "@react-email/body";
import { Button } from "@react-email/button";
import { Container } from "@react-email/container";
import { Head } from "@react-email/head";
import { Hr } from "@react-email/hr";
import { Html } from "@react-email/html";
import { Img } from "@react-email/img";
import { Link } from "@react-email/link";
import { Preview } from "@react-email/preview";
import { Section } from "@react-email/section";
import { Text } from "@react-email/text";
import { type CSSProperties, type ReactNode, useContext } from "react";
import { designTokens as t, textOn } from "../src/branding";
import { BrandContext } from "./brand";

export type LayoutProps = {
  preview: string;
  children: ReactNode;
};

export { type Brand, BrandContext } from "./brand";

// No colour here is six digits: `#000000` would match the `\b\d{6}\b` a reader (or a test) finds a code with.
const onBrand = (color: string) => (textOn(color) === "#000000" ? "#000" : "#fff");

export const styles = {
  body: { backgroundColor: t.light.background, fontFamily: t.font, margin: 0 },
  container: {
    backgroundColor: t.light.surface,
    border: `1px solid ${t.light.border}`,
    margin: "32px auto",
    padding: "24px 32px",
    maxWidth: "480px",
    borderRadius: t.radius,
  },
  heading: { fontSize: "20px", fontWeight: 600, color: t.light.text, margin: "0 0 16px" },
  logo: { height: "32px", width: "auto", margin: "0 0 8px" },
  text: { fontSize: "15px", lineHeight: "22px", color: t.light.text },
  code: {
    fontSize: "28px",
    fontWeight: 700,
    letterSpacing: "4px",
    fontFamily: t.mono,
    color: t.light.text,
    backgroundColor: t.light.background,
    padding: "12px 16px",
    borderRadius: "6px",
    textAlign: "center",
  },
  button: {
    backgroundColor: "#111",
    color: "#fff",
    padding: "12px 20px",
    borderRadius: "6px",
    fontSize: "15px",
    fontWeight: 600,
    textDecoration: "none",
    display: "inline-block",
  },
  link: { fontSize: "13px", color: t.light.muted, wordBreak: "break-all" },
  muted: { fontSize: "13px", lineHeight: "20px", color: t.light.muted },
  hr: { borderColor: t.light.border, margin: "24px 0" },
} satisfies Record<string, CSSProperties>;

export default function Layout({ preview, children }: LayoutProps) {
  const { name: appName, logoUrl } = useContext(BrandContext);
  return (
    <Html lang="en">
      <Head />
      <Preview>{preview}</Preview>
      <Body style={styles.body}>
        <Container style={styles.container}>
          {logoUrl ? <Img src={logoUrl} alt="" style={styles.logo} /> : null}
          <Text style={styles.heading}>{appName}</Text>
          <Section>{children}</Section>
          <Hr style={styles.hr} />
          <Text style={styles.muted}>{`This is an automated message from ${appName}. Please do not reply.`}</Text>
        </Container>
      </Body>
    </Html>
  );
}

/** A call-to-action button, with the same link spelled out for clients that block buttons. */
export function ActionLink({ href, label }: { href: string; label: string }) {
  const { color } = useContext(BrandContext);
  return (
    <>
      <Button href={href} style={{ ...styles.button, backgroundColor: color, color: onBrand(color) }}>
        {label}
      </Button>
      <Text style={styles.muted}>Or copy and paste this link into your browser:</Text>
      <Text style={styles.link}>
        <Link href={href} style={styles.link}>
          {href}
        </Link>
      </Text>
    </>
  );
}
