/**
 * Discord interactions → the bot core. Discord drops an interaction not answered within 3 s
 * (https://discord.com/developers/docs/interactions/receiving-and-responding#responding-to-an-interaction), so every
 * handler answers first, before any other I/O: an ephemeral reply for input the core rejects synchronously, else a
 * deferral; downloads, queue calls and edits come after.
 */
import {
  ActionRowBuilder, MessageFlags, ModalBuilder, Routes, TextInputBuilder, TextInputStyle,
  type APIMessage, type AutocompleteInteraction, type ButtonInteraction, type ChatInputCommandInteraction, type Client,
  type Interaction, type MessageContextMenuCommandInteraction, type ModalSubmitInteraction,
} from 'discord.js';
import type { Origin } from '../../queue/job.js';
import type { BotCore } from '../core/bot-core.js';
import { userMessageFor } from '../core/errors.js';
import { fetchCheckedImage, type FetchPolicy } from '../core/fetch-image.js';
import { imageSlots } from '../core/image-slots.js';
import { helpText, isHelpRequest } from '../core/help.js';
import { ASPECT_SUGGESTIONS } from '../core/options.js';
import type { ImagineInput, RawValue, RemoteImage } from '../core/validate.js';
import { isDiscordAdmin, parseAdminCommand } from './admin-command.js';
import { imagesOf, looksLikeImage, remoteFromApi, remoteFromAttachment } from './attachments.js';
import { ADMIN, IMAGINE, REMIX } from './command-json.js';
import { DEFAULT_UPLOAD_LIMIT, ephemeral } from './render.js';
import { interactionSink } from './reply-sink.js';

export interface InteractionDeps {
  core: BotCore;
  client: Client;
  adminUserIds: ReadonlySet<string>;
  fetchPolicy: Omit<FetchPolicy, 'maxBytes' | 'maxPixels'>;
}

const REMIX_MODAL = 'sdremix:';
const REMIX_FIELD = 'prompt';

export function originOf(i: Interaction): Origin {
  return {
    platform: 'discord',
    userId: i.user.id,
    userName: i.user.username,
    ...(i.guildId ? { guildId: i.guildId } : {}),
    ...(i.channelId ? { channelId: i.channelId } : {}),
  };
}

function uploadLimit(i: Interaction): number {
  return i.attachmentSizeLimit ?? DEFAULT_UPLOAD_LIMIT;
}

export async function handleInteraction(i: Interaction, deps: InteractionDeps): Promise<void> {
  try {
    if (i.isChatInputCommand()) {
      if (i.commandName === IMAGINE) await imagine(i, deps);
      else if (i.commandName === ADMIN) await admin(i, deps);
    } else if (i.isAutocomplete()) await autocomplete(i, deps);
    else if (i.isButton()) await button(i, deps);
    else if (i.isMessageContextMenuCommand() && i.commandName === REMIX) await remixModal(i);
    else if (i.isModalSubmit() && i.customId.startsWith(REMIX_MODAL)) await remixSubmit(i, deps);
  } catch (err) {
    await fail(i, err, deps);
  }
}

/** Tells the user what went wrong, privately: after a public deferral that means replacing it by an ephemeral follow-up. */
async function fail(i: Interaction, err: unknown, deps: InteractionDeps): Promise<void> {
  const text = `⚠️ ${userMessageFor(err)}`;
  if (!(err instanceof Error && (err.name === 'UserError' || err.name === 'BadRequestError'))) {
    deps.core.options.logger.error({ err: err instanceof Error ? err.stack : String(err), interaction: i.id }, 'interaction failed');
  }
  if (!i.isRepliable()) return;
  try {
    if (!i.deferred && !i.replied) await i.reply(ephemeral(text));
    else if (i.ephemeral) await i.editReply({ content: text, files: [], attachments: [], components: [] });
    else {
      if (i.deferred && !i.replied && !i.isMessageComponent()) await i.deleteReply().catch(() => undefined);
      await i.followUp(ephemeral(text));
    }
  } catch (e) {
    deps.core.options.logger.warn({ err: String(e) }, 'could not report an error to the user');
  }
}

function imagineInput(i: ChatInputCommandInteraction): ImagineInput {
  const options: Record<string, RawValue> = {};
  const images: ImagineInput['images'] = {};
  let text = '';
  for (const o of i.options.data) {
    if (o.name === 'prompt') text = String(o.value ?? '');
    else if (o.attachment && (o.name === 'image' || o.name === 'mask' || o.name === 'depth')) images[o.name] = remoteFromAttachment(o.attachment);
    else if (o.attachment && o.name === 'control_image') images.control = remoteFromAttachment(o.attachment);
    else if (o.value !== undefined) options[o.name] = o.value;
  }
  return { text, options, images, origin: originOf(i) };
}

async function imagine(i: ChatInputCommandInteraction, deps: InteractionDeps): Promise<void> {
  const startedAt = Date.now();
  const input = imagineInput(i);
  if (isHelpRequest(input.text)) {
    await i.reply(ephemeral(helpText()));
    return;
  }
  const draft = deps.core.prepare(input); // sync: a UserError here becomes an ephemeral reply
  await i.deferReply();
  const request = await deps.core.attachImages(draft, deps.fetchPolicy);
  await deps.core.run(request, interactionSink(i, deps.core.options.logger), { maxUploadBytes: uploadLimit(i), startedAt, notes: draft.notes });
}

async function admin(i: ChatInputCommandInteraction, deps: InteractionDeps): Promise<void> {
  const logger = deps.core.options.logger;
  if (!isDiscordAdmin(i, deps.adminUserIds)) {
    logger.warn({ user: i.user.id, guild: i.guildId, sub: i.options.getSubcommand(false) }, 'admin command refused');
    await i.reply(ephemeral('Only server managers (Manage Server) and configured bot admins can use `/sd-admin`.'));
    return;
  }
  const cmd = parseAdminCommand(i);
  await i.deferReply({ flags: MessageFlags.Ephemeral });
  const lines = await deps.core.admin(cmd, {
    platform: 'discord', userId: i.user.id, ...(i.guildId ? { guildId: i.guildId } : {}), ...(i.channelId ? { channelId: i.channelId } : {}),
  });
  await i.editReply({ content: lines.join('\n').slice(0, 2000), allowedMentions: { parse: [] } });
}

async function autocomplete(i: AutocompleteInteraction, deps: InteractionDeps): Promise<void> {
  const focused = i.options.getFocused(true);
  const typed = String(focused.value).trim().toLowerCase();
  let values: string[];
  if (focused.name === 'ar') {
    values = [...ASPECT_SUGGESTIONS].filter((a) => a.startsWith(typed));
    if (/^\d+:\d+$/.test(typed) && !values.includes(typed)) values.unshift(typed);
  } else {
    values = deps.core.catalog.knownIds().filter((id) => id.toLowerCase().includes(typed));
  }
  await i.respond(values.slice(0, 25).map((v) => ({ name: v, value: v })));
}

async function downloadAll(remotes: RemoteImage[], deps: InteractionDeps): Promise<Uint8Array[]> {
  const policy = { ...deps.core.imageLimits, ...deps.fetchPolicy };
  return Promise.all(remotes.map((r) => fetchCheckedImage(r, policy, 'The picture')));
}

async function button(i: ButtonInteraction, deps: InteractionDeps): Promise<void> {
  const action = deps.core.decodeAction(i.customId);
  if (!action) return; // not our button
  const isAdmin = isDiscordAdmin(i, deps.adminUserIds);
  if (action.action === 'delete') {
    await i.deferUpdate();
    if (!(await deps.core.mayDelete(action.jobId, i.user.id, isAdmin))) {
      await i.followUp(ephemeral('Only the person who asked for this picture, or an admin, can delete it.'));
      return;
    }
    await i.deleteReply();
    deps.core.options.logger.info({ user: i.user.id, jobId: action.jobId, admin: isAdmin }, 'result deleted');
    return;
  }
  const origin = originOf(i);
  deps.core.checkUser(origin);
  await i.deferReply();
  const startedAt = Date.now();
  const request = await deps.core.followUp(action, origin, () => downloadAll(imagesOf(i.message.attachments), deps));
  await deps.core.run(request, interactionSink(i, deps.core.options.logger, i.message.id), { maxUploadBytes: uploadLimit(i), startedAt });
}

/** "Remix" on any message: ask for the prompt in a modal (the 3 s answer), then img2img on that message's image. */
async function remixModal(i: MessageContextMenuCommandInteraction): Promise<void> {
  const target = i.targetMessage;
  if (imagesOf(target.attachments).length === 0) {
    await i.reply(ephemeral('That message has no picture to remix. Use Remix on a message with an image.'));
    return;
  }
  // Our results start with the prompt in bold; other messages' text is the natural starting prompt.
  const bold = /^\*\*(.+?)\*\*/s.exec(target.content)?.[1];
  const prefill = (bold ?? target.content).replace(/\\([*_`~|>])/g, '$1').slice(0, 4000);
  const input = new TextInputBuilder().setCustomId(REMIX_FIELD).setLabel('Prompt (flags allowed, e.g. --strength 0.5)')
    .setStyle(TextInputStyle.Paragraph).setRequired(true).setMaxLength(4000);
  if (prefill) input.setValue(prefill);
  const modal = new ModalBuilder().setCustomId(`${REMIX_MODAL}${target.id}`).setTitle('Remix this picture')
    .addComponents(new ActionRowBuilder<TextInputBuilder>().addComponents(input));
  await i.showModal(modal);
}

async function remixSubmit(i: ModalSubmitInteraction, deps: InteractionDeps): Promise<void> {
  const startedAt = Date.now();
  const origin = originOf(i);
  deps.core.checkUser(origin);
  await i.deferReply();
  const messageId = i.customId.slice(REMIX_MODAL.length);
  const raw = (await deps.client.rest.get(Routes.channelMessage(i.channelId ?? '', messageId))) as APIMessage;
  const pictures = raw.attachments.map(remoteFromApi).filter(looksLikeImage);
  const text = i.fields.getTextInputValue(REMIX_FIELD);
  const draft = deps.core.prepare({ text, images: imageSlots(pictures, text), origin });
  const request = await deps.core.attachImages(draft, deps.fetchPolicy);
  await deps.core.run(request, interactionSink(i, deps.core.options.logger), { maxUploadBytes: uploadLimit(i), startedAt, notes: draft.notes });
}

