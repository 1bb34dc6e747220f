import { Text } from "@react-email/text";
import Layout, { ActionLink, styles } from "./layout";

export type InvitationProps = { link: string; teamName: string | null; inviterEmail: string | null };

/** Fixed text: the team name is chosen by whoever made the team (a guest can), so it stays out of the subject line. */
export const subject = ({ teamName }: InvitationProps) => (teamName ? "You have been invited to join a team" : "You have been invited");

export default function Invitation({ link, teamName, inviterEmail }: InvitationProps) {
  const who = inviterEmail ?? "Someone";
  return (
    <Layout preview={teamName ? "You have been invited to join a team" : "You have been invited"}>
      <Text style={styles.text}>
        {teamName ? `${who} invited you to join the team ${teamName}.` : `${who} invited you to join.`} Click the button
        below to accept the invitation:
      </Text>
      <ActionLink href={link} label="Accept invitation" />
      <Text style={styles.muted}>If you were not expecting this invitation, you can ignore this email.</Text>
    </Layout>
  );
}
