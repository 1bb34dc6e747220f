import { Body, Button, Container, Head, Hr, Html, Link, Preview, Section, Text } from "@react-email/components";
import { type CSSProperties, createContext, type ReactNode, useContext } from "react";

export type LayoutProps = {
  preview: string;
  children: ReactNode;
};

/** The deployment's brand (APP_NAME), provided by renderEmail, so no template has to pass it along. */
export type Brand = { appName: string };
export const BrandContext = createContext<Brand>({ appName: "Auth" });

// Colours are 3-digit hex on purpose: a 6-digit hex (#000000) would match `\b\d{6}\b`.
export const styles = {
  body: { backgroundColor: "#f6f6f6", fontFamily: "-apple-system, Segoe UI, Helvetica, Arial, sans-serif", margin: 0 },
  container: { backgroundColor: "#fff", margin: "32px auto", padding: "24px 32px", maxWidth: "480px", borderRadius: "8px" },
  heading: { fontSize: "20px", fontWeight: 600, color: "#111", margin: "0 0 16px" },
  text: { fontSize: "15px", lineHeight: "22px", color: "#333" },
  code: {
    fontSize: "28px",
    fontWeight: 700,
    letterSpacing: "4px",
    fontFamily: "ui-monospace, Menlo, Consolas, monospace",
    color: "#111",
    backgroundColor: "#f1f1f1",
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
  link: { fontSize: "13px", color: "#555", wordBreak: "break-all" },
  muted: { fontSize: "13px", lineHeight: "20px", color: "#777" },
  hr: { borderColor: "#eee", margin: "24px 0" },
} satisfies Record<string, CSSProperties>;

export default function Layout({ preview, children }: LayoutProps) {
  const { appName } = useContext(BrandContext);
  return (
    <Html lang="en">
      <Head />
      <Preview>{preview}</Preview>
      <Body style={styles.body}>
        <Container style={styles.container}>
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
  return (
    <>
      <Button href={href} style={styles.button}>
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
