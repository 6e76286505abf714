// Written for these tests in the manner of upstream's gallery script: it reads the page as
// text-generation-webui lays it out and throws (so the filter after it never runs) where it is not.
const tgwGallery = document.getElementById('tgw-gallery');
const tgwArea = document.getElementById('extensions');
const tgwAlone = tgwArea.childNodes.length === 1;
document.querySelector('.header_bar').addEventListener('click', (event) => {
  if (event.target.tagName !== 'BUTTON') return;
  const onChat = event.target.textContent.trim() === 'Chat';
  const modeShown = document.getElementById('chat-mode').offsetHeight > 0;
  tgwGallery.style.display = onChat && modeShown ? '' : 'none';
  if (tgwAlone) tgwArea.style.display = onChat ? '' : 'none';
});
