// Jitsu style: remember each user's email domain on identify, add it to their later events.
export default async function (event, ctx) {
  const key = 'domain:' + event.userId;
  if (event.type === 'identify' && event.traits?.email) {
    await ctx.store.set(key, event.traits.email.split('@')[1], {ttl: 3600});
    ctx.log.info('remembered', key);
    return;
  }
  const domain = await ctx.store.get(key);
  if (domain && event.type === 'track') return {...event, properties: {...event.properties, domain}};
}
