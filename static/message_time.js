// How the console and the widget show when something was written: one rule for both. The console loads
// this file as a script; the server puts it inside /widget.js's closure (app/widget_api/routes.py), so
// on a host page it adds no global.
//
// Hours have no leading zero ("9:05", "9:05 AM"); Finnish says "klo" before the time ("klo 9.05",
// "3.11. klo 9.05", "tiistaina klo 9.05"); the day comes first when it is not today, the year when it is
// not this year. Messages from one sender less than GROUP_MS apart show one name and time.
const messageTime = (() => {
  'use strict';

  const GROUP_MS = 5 * 60 * 1000;
  const formats = new Map();

  // Building a DateTimeFormat is slow and a long history shows hundreds of times.
  function formatter(locale, options) {
    const key = `${locale || ''} ${JSON.stringify(options)}`;
    let found = formats.get(key);
    if (!found) {
      try {
        found = new Intl.DateTimeFormat(locale, options);
      } catch (e) {
        found = new Intl.DateTimeFormat(undefined, options); // a page's odd lang attribute
      }
      formats.set(key, found);
    }
    return found;
  }

  // The time of day after whatever `options` put before it (a day, a weekday).
  function withClock(date, locale, options) {
    const format = formatter(locale, Object.assign({}, options, { hour: 'numeric', minute: '2-digit' }));
    const finnish = format.resolvedOptions().locale.split('-')[0] === 'fi';
    const parts = format.formatToParts(date);
    return parts.map((part, i) => {
      if (part.type !== 'hour') return part.value;
      const hour = part.value.replace(/^0(?=\d)/, '');
      return finnish && !(i > 0 && /klo/.test(parts[i - 1].value)) ? `klo ${hour}` : hour;
    }).join('');
  }

  function text(date, locale) {
    const now = new Date();
    if (date.toDateString() === now.toDateString()) return withClock(date, locale, {});
    const day = { day: 'numeric', month: 'short' };
    if (date.getFullYear() !== now.getFullYear()) day.year = 'numeric';
    return withClock(date, locale, day);
  }

  function weekday(date, locale) {
    return withClock(date, locale, { weekday: 'long' });
  }

  function grouped(earlier, later) {
    return Math.abs(later - earlier) < GROUP_MS;
  }

  return { text, weekday, grouped };
})();
